"""Fine-tuning jobs: POST/GET /v1/fine_tuning/jobs, GET /v1/fine_tuning/jobs/{id},
POST /v1/fine_tuning/jobs/{id}/cancel, GET /v1/fine_tuning/jobs/{id}/events and /checkpoints,
plus the same routes (and the files routes) under /openai/... for the SDK's ``AzureOpenAI`` client.

Lifecycle: a job is created ``validating_files``; every GET of the job advances it one stage
(``validating_files`` -> ``queued`` -> ``running`` -> ``succeeded``), adding events on the way.
On success it gets a ``fine_tuned_model``, ``trained_tokens``, checkpoints and a result file (CSV
of step metrics, stored with the uploaded files). Steer it with :func:`configure`:
``polls_per_stage`` (GETs before each advance), ``fail_next`` (the next created job fails when
it starts running, with that error object) and ``drop_metadata`` (jobs keep no ``metadata``: it is
answered as null, as by an OpenAI-compatible server that does not implement it). A training file that is not valid JSONL fails the job
at validation with ``invalid_training_file``, as the real service does.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fake_openai.files import routes as file_routes
from fake_openai.files import store_file
from fake_openai.state import FakeState, Fault

STAGES = ("validating_files", "queued", "running", "succeeded")
#: A job create refused because the organisation may no longer fine-tune (OpenAI's wind-down of self-serve
#: fine-tuning; OpenAI publishes the dates, not this text: the status and the words are what Beep reads).
#: ``state.inject(FINE_TUNING_CLOSED, path="/v1/fine_tuning/jobs", method="POST")``.
FINE_TUNING_CLOSED = Fault(status=403, body={"error": {
    "message": "Self-serve fine-tuning is no longer available to your organization.",
    "type": "invalid_request_error", "code": "fine_tuning_unavailable", "param": None}})
#: A job create for a base model that was shut down.
BASE_MODEL_SHUT_DOWN = Fault(status=400, body={"error": {
    "message": "The model gpt-4.1-nano-2025-04-14 does not exist or is not available for fine-tuning.",
    "type": "invalid_request_error", "code": "model_not_available", "param": "model"}})
FINAL = ("succeeded", "failed", "cancelled")
_KEY = "fine_tuning"


def _store(state: FakeState) -> dict[str, Any]:
    with state.lock:
        return state.extras.setdefault(
            _KEY,
            {"jobs": {}, "polls": {}, "events": {}, "checkpoints": {}, "polls_per_stage": 1, "fail_next": None, "order": [],
             "drop_metadata": False},
        )


def configure(state: FakeState, *, polls_per_stage: int | None = None, fail_next: dict[str, Any] | None = None,
              drop_metadata: bool | None = None) -> None:
    """Script the fake: how many GETs per stage, an error object for the next created job, and whether
    jobs drop the ``metadata`` they were created with."""
    store = _store(state)
    with state.lock:
        if polls_per_stage is not None:
            store["polls_per_stage"] = polls_per_stage
        if fail_next is not None:
            store["fail_next"] = fail_next
        if drop_metadata is not None:
            store["drop_metadata"] = drop_metadata


def jobs(state: FakeState) -> list[dict[str, Any]]:
    """Every job created so far, oldest first (for assertions)."""
    store = _store(state)
    with state.lock:
        return [store["jobs"][i] for i in store["order"]]


def _error(message: str, status: int = 400, code: str | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "code": code, "param": param}}, status)


def _event(state: FakeState, job_id: str, message: str, *, level: str = "info", data: dict | None = None, kind: str = "message") -> None:
    store = _store(state)
    store["events"][job_id].append(
        {
            "object": "fine_tuning.job.event",
            "id": state.new_id("ftevent"),
            "created_at": int(time.time()),
            "level": level,
            "message": message,
            "data": data or {},
            "type": kind,
        }
    )


def _validate_jsonl(content: bytes) -> tuple[int, str | None]:
    """(number of examples, an error message or None)."""
    n = 0
    for number, line in enumerate(content.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return n, f"line {number} is not valid JSON"
        if not isinstance(record, dict) or not ("messages" in record or {"prompt", "completion"} <= set(record)):
            return n, f"line {number} has neither messages nor prompt/completion"
        n += 1
    return n, None if n else "the file has no examples"


def _succeed(state: FakeState, job: dict[str, Any]) -> None:
    store = _store(state)
    content = state.files[job["training_file"]].content
    n_epochs = job["hyperparameters"]["n_epochs"]
    tokens = max(1, len(content) // 4) * n_epochs
    steps = 3 * n_epochs
    rows = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
    for step in range(1, steps + 1):
        loss = round(2.0 / step, 4)
        rows.append(f"{step},{loss},{min(1.0, 0.3 + 0.05 * step):.4f},{loss + 0.1:.4f},{min(1.0, 0.25 + 0.05 * step):.4f}")
        _event(state, job["id"], f"Step {step}/{steps}: training loss={loss}", kind="metrics",
               data={"step": step, "total_steps": steps, "train_loss": loss})
    result = store_file(state, "step_metrics.csv", "fine-tune-results", ("\n".join(rows) + "\n").encode())
    model = f"ft:{job['model']}:beep-test:{job.get('user_provided_suffix') or 'model'}:{job['id'][-6:]}"
    for step in (steps - 1, steps):
        store["checkpoints"][job["id"]].insert(0, {
            "object": "fine_tuning.job.checkpoint",
            "id": state.new_id("ftckpt"),
            "created_at": int(time.time()),
            "fine_tuned_model_checkpoint": f"{model}:ckpt-step-{step}" if step < steps else model,
            "fine_tuning_job_id": job["id"],
            "metrics": {"step": float(step), "train_loss": round(2.0 / step, 4), "valid_loss": round(2.0 / step + 0.1, 4)},
            "step_number": step,
        })
    job.update(status="succeeded", fine_tuned_model=model, trained_tokens=tokens, finished_at=int(time.time()),
               result_files=[result.id])
    _event(state, job["id"], "The job has successfully completed")


def _advance(state: FakeState, job: dict[str, Any]) -> None:
    store = _store(state)
    if job["status"] in FINAL:
        return
    store["polls"][job["id"]] += 1
    if store["polls"][job["id"]] < store["polls_per_stage"]:
        return
    store["polls"][job["id"]] = 0
    status = job["status"]
    if status == "validating_files":
        stored = state.files[job["training_file"]]
        _, problem = _validate_jsonl(stored.content)
        if problem:
            job.update(status="failed", finished_at=int(time.time()),
                       error={"code": "invalid_training_file", "message": f"The training file is invalid: {problem}", "param": "training_file"})
            _event(state, job["id"], job["error"]["message"], level="error")
            return
        job["status"] = "queued"
        _event(state, job["id"], "Files validated, moving job to queued state")
    elif status == "queued":
        if job.get("_fail"):
            job.update(status="failed", finished_at=int(time.time()), error=job.pop("_fail"))
            _event(state, job["id"], f"Fine-tuning job failed: {job['error']['message']}", level="error")
            return
        job["status"] = "running"
        _event(state, job["id"], "Fine-tuning job started")
    elif status == "running":
        _succeed(state, job)


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    """Newest first, cursor pagination with ``after`` (an id: return the items after it) and ``limit``."""
    after = request.query_params.get("after")
    limit = int(request.query_params.get("limit") or 20)
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    page = items[:limit]
    return {"object": "list", "data": page, "has_more": len(items) > limit,
            "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}


def routes(state: FakeState) -> list[Route]:
    store = _store(state)

    async def create(request: Request) -> Response:
        body = json.loads(await request.body())
        early, record, _ = await state.gate("POST", "/v1/fine_tuning/jobs", body)
        if early is not None:
            return early
        if not body.get("model"):
            return _error("model is required", param="model")
        for param in ("training_file", "validation_file"):
            file_id = body.get(param)
            if param == "training_file" and not file_id:
                return _error("training_file is required", param=param)
            if file_id and file_id not in state.files:
                return _error(f"invalid {param}: no such file {file_id}", param=param)
            if file_id and state.files[file_id].purpose != "fine-tune":
                return _error(f"{param} {file_id} was not uploaded with purpose fine-tune", param=param)
        method = body.get("method") or {"type": "supervised", "supervised": {"hyperparameters": {}}}
        hyper = dict(body.get("hyperparameters") or {})
        hyper.update((method.get(method.get("type", "supervised")) or {}).get("hyperparameters") or {})
        hyperparameters = {
            "n_epochs": hyper.get("n_epochs") if isinstance(hyper.get("n_epochs"), int) else 3,
            "batch_size": hyper.get("batch_size") if isinstance(hyper.get("batch_size"), int) else 1,
            "learning_rate_multiplier": hyper.get("learning_rate_multiplier")
            if isinstance(hyper.get("learning_rate_multiplier"), (int, float)) else 1.8,
        }
        job_id = state.new_id("ftjob")
        job = {
            "object": "fine_tuning.job",
            "id": job_id,
            "created_at": int(time.time()),
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": hyperparameters,
            "model": body["model"],
            "organization_id": "org-fake",
            "result_files": [],
            "seed": body.get("seed", 42),
            "status": "validating_files",
            "trained_tokens": None,
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "estimated_finish": None,
            "integrations": None,
            "metadata": None if store["drop_metadata"] else body.get("metadata"),
            "method": {"type": method.get("type", "supervised"), "supervised": {"hyperparameters": hyperparameters}},
            "user_provided_suffix": body.get("suffix"),
        }
        with state.lock:
            if store["fail_next"] is not None:
                job["_fail"] = store["fail_next"]
                store["fail_next"] = None
            store["jobs"][job_id] = job
            store["order"].append(job_id)
            store["polls"][job_id] = 0
            store["events"][job_id] = []
            store["checkpoints"][job_id] = []
            _event(state, job_id, f"Created fine-tuning job: {job_id}")
            _event(state, job_id, f"Validating training file: {job['training_file']}")
        return await state.finish(record, JSONResponse(_public(job)))

    async def listing(request: Request) -> Response:
        early, _, _ = await state.gate("GET", "/v1/fine_tuning/jobs", None)
        if early is not None:
            return early
        with state.lock:
            items = [_public(store["jobs"][i]) for i in reversed(store["order"])]
        return JSONResponse(_page(items, request))

    async def retrieve(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        early, record, _ = await state.gate("GET", "/v1/fine_tuning/jobs/{id}", None)
        if early is not None:
            return early
        with state.lock:
            job = store["jobs"].get(job_id)
            if job is None:
                return _error(f"No fine-tuning job found with id {job_id}", 404, code="fine_tune_not_found")
            _advance(state, job)
            response = JSONResponse(_public(job))
        return await state.finish(record, response)

    async def cancel(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        early, record, _ = await state.gate("POST", "/v1/fine_tuning/jobs/{id}/cancel", None)
        if early is not None:
            return early
        with state.lock:
            job = store["jobs"].get(job_id)
            if job is None:
                return _error(f"No fine-tuning job found with id {job_id}", 404, code="fine_tune_not_found")
            if job["status"] in FINAL:
                return _error(f"Job {job_id} has already {job['status']} and cannot be cancelled")
            job.update(status="cancelled", finished_at=int(time.time()))
            _event(state, job_id, "Fine-tuning job cancelled")
            response = JSONResponse(_public(job))
        return await state.finish(record, response)

    async def events(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        early, _, _ = await state.gate("GET", "/v1/fine_tuning/jobs/{id}/events", None)
        if early is not None:
            return early
        with state.lock:
            if job_id not in store["jobs"]:
                return _error(f"No fine-tuning job found with id {job_id}", 404)
            items = list(reversed(store["events"][job_id]))
        return JSONResponse(_page(items, request))

    async def checkpoints(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        early, _, _ = await state.gate("GET", "/v1/fine_tuning/jobs/{id}/checkpoints", None)
        if early is not None:
            return early
        with state.lock:
            if job_id not in store["jobs"]:
                return _error(f"No fine-tuning job found with id {job_id}", 404)
            items = list(store["checkpoints"][job_id])
        return JSONResponse(_page(items, request))

    ours = [
        Route("/v1/fine_tuning/jobs", create, methods=["POST"]),
        Route("/v1/fine_tuning/jobs", listing, methods=["GET"]),
        Route("/v1/fine_tuning/jobs/{job_id}", retrieve, methods=["GET"]),
        Route("/v1/fine_tuning/jobs/{job_id}/cancel", cancel, methods=["POST"]),
        Route("/v1/fine_tuning/jobs/{job_id}/events", events, methods=["GET"]),
        Route("/v1/fine_tuning/jobs/{job_id}/checkpoints", checkpoints, methods=["GET"]),
    ]
    # AzureOpenAI(azure_endpoint=ROOT) calls ROOT/openai/<path>?api-version=...: serve the same handlers there.
    azure = [
        Route("/openai" + route.path.removeprefix("/v1"), route.endpoint, methods=sorted(route.methods or []))
        for route in ours + file_routes(state)
    ]
    return ours + azure
