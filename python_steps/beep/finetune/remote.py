"""Remote fine-tuning through the official SDK: one small class per provider.

:class:`OpenAIFineTuner` talks to api.openai.com or any OpenAI-compatible server (``base_url`` /
``OPENAI_BASE_URL``); :class:`AzureFineTuner` is the same calls through ``openai.AzureOpenAI``
(endpoint, API version; the fine-tuned model is served under a *deployment* name you create in
Azure, recorded with the job). Reads go through Beep's retry policy (429 with retry-after, 5xx,
timeouts); other errors are raised with the provider's message.

Creates are never retried blindly (a dropped connection or a 500 may come *after* the provider did
the work): every upload and job carries a tag, and before any retry the recent files / jobs are
listed and the one the failed attempt created is adopted (:func:`beep.llm.retry.create_once`).
An upload is named after its bytes (``train.sha256-<16 hex>.jsonl``) and matched by that name,
its purpose and its size. A job carries the settings hash in its ``metadata``
(``beep_settings_hash``); where the service keeps no metadata (Azure) the hash's first 10 hex
digits go into its ``suffix`` instead, so a later start can find it there too.

Adoption does not depend on the provider echoing ``metadata``: a job that comes back without Beep's
key (an OpenAI-compatible server that drops it) is matched by what it was created from instead —
:class:`JobSpec`: training file, validation file, base model, suffix, seed, the hyperparameters
given, created since the attempt started, and not failed or cancelled. A job whose metadata carries
*another* settings hash is never adopted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import openai

from beep.llm.client import ClientSettings, make_client
from beep.llm.retry import RetryPolicy, call_with_retry, create_once, describe_error

T = TypeVar("T")

#: The job metadata key carrying the hash of the settings a job was started with.
METADATA_KEY = "beep_settings_hash"
#: Hex digits of the settings hash put into the suffix where metadata is not kept (Azure).
SUFFIX_TAG_DIGITS = 10
#: OpenAI allows 64 characters of suffix, Azure fewer: a tagged suffix is kept within this.
MAX_SUFFIX = 40


def upload_name(path: Path, sha256: str) -> str:
    """The file name an upload carries: its sha256 in it, so a retry or a later start can find it."""
    return f"{path.stem}.sha256-{sha256[:16]}{path.suffix}"


def tagged_suffix(suffix: str | None, tag: str) -> str:
    """``suffix`` + ``-`` + the first hex digits of ``tag``, within :data:`MAX_SUFFIX` characters."""
    mark = tag[:SUFFIX_TAG_DIGITS]
    head = (suffix or "beep")[: MAX_SUFFIX - len(mark) - 1]
    return f"{head}-{mark}"


def _job_suffix(job: Any) -> str:
    extra = getattr(job, "model_extra", None) or {}
    for name in ("user_provided_suffix", "suffix"):
        value = getattr(job, name, None) or extra.get(name)
        if value:
            return str(value)
    return ""


#: Seconds a job's ``created_at`` (the provider's clock) may lie before the attempt's start (ours):
#: clocks differ, and ``created_at`` is whole seconds.
CLOCK_SLACK_SECONDS = 300
_GONE = ("failed", "cancelled")


def _hyperparameter(job: Any, name: str) -> Any:
    """A hyperparameter the job reports, top-level or under ``method`` (None when it reports none)."""
    for holder in (getattr(job, "hyperparameters", None),
                   getattr(getattr(getattr(job, "method", None), "supervised", None), "hyperparameters", None)):
        value = getattr(holder, name, None) if holder is not None else None
        if value is not None and value != "auto":
            return value
    return None


@dataclass(frozen=True)
class JobSpec:
    """What a job is created from: how a job is recognised when the provider keeps no ``metadata``.

    ``since``: Unix seconds when the attempt that may have created it started (the job is not
    older, give or take :data:`CLOCK_SLACK_SECONDS`)."""

    model: str
    training_file: str
    validation_file: str | None
    suffix: str | None
    seed: int | None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    since: float | None = None

    def matches(self, job: Any) -> bool:
        if getattr(job, "status", None) in _GONE:
            return False
        if job.model != self.model or job.training_file != self.training_file:
            return False
        if (job.validation_file or None) != (self.validation_file or None):
            return False
        suffix = _job_suffix(job)
        if suffix and suffix != (self.suffix or ""):
            return False
        if not suffix and self.suffix and job.fine_tuned_model and f":{self.suffix}:" not in job.fine_tuned_model:
            return False
        seed = getattr(job, "seed", None)
        if self.seed is not None and seed is not None and seed != self.seed:
            return False
        for name, wanted in self.hyperparameters.items():
            value = _hyperparameter(job, name)
            if value is not None and value != wanted:
                return False
        if self.since is not None and job.created_at and job.created_at < self.since - CLOCK_SLACK_SECONDS:
            return False
        return True


class ProviderError(RuntimeError):
    """The provider refused a request; the message is the provider's own."""


class FineTuningUnavailable(ProviderError):
    """The provider refuses to create fine-tuning jobs at all (OpenAI's wind-down, a shut-down base model)."""


#: OpenAI's wind-down of self-serve fine-tuning, as its deprecations page states it ("Update to OpenAI's
#: self-serve fine-tuning", announced 2026-05-07), and the shutdown of Beep's former default base model.
OPENAI_FINE_TUNING_WIND_DOWN: tuple[tuple[str, str], ...] = (
    ("2026-05-07", "organisations that had never fine-tuned can no longer create jobs"),
    ("2026-07-02", "neither can organisations without inference on a fine-tuned model in the last 60 days"),
    ("2026-10-23", "gpt-4.1-nano-2025-04-14 (Beep's default base model before) was shut down"),
    ("2027-01-06", "no new fine-tuning jobs for anyone; existing fine-tunes answer until their base model shuts down"),
    ("2027-01-14", "gpt-4o-2024-08-06, gpt-4o-mini-2024-07-18, gpt-4.1-2025-04-14 and gpt-4.1-mini-2025-04-14 "
                   "(and fine-tunes of them) shut down"),
)
#: Words of a refusal that is about fine-tuning (or the base model) being gone, not about this request.
_CLOSED_HINTS = ("no longer", "not available", "unavailable", "wind", "shut down", "shutdown", "deprecated", "retired",
                 "not eligible", "does not exist", "not have access", "disabled", "sunset")


def fine_tuning_closed(err: BaseException) -> bool:
    """Whether a failed job create says fine-tuning is closed to this account or the base model is gone:
    a 403, or a 400 / 404 whose message says so. (OpenAI documents the dates, not the error's text: the
    words are matched, not one exact message.)"""
    if isinstance(err, openai.PermissionDeniedError):
        return True
    if isinstance(err, (openai.BadRequestError, openai.NotFoundError)):
        text = provider_message(err).lower()
        return any(hint in text for hint in _CLOSED_HINTS)
    return False


def closed_message(err: BaseException, *, provider: str, base_model: str) -> str:
    """What a refused job create means, the dates, and where to go instead."""
    dates = "; ".join(f"{day}: {what}" for day, what in OPENAI_FINE_TUNING_WIND_DOWN)
    instead = ("`beep finetune --provider hf --base-model <folder>` (LoRA on an open model you downloaded, on this "
               "machine or a GPU; see docs/finetune-open-model.md)")
    others = (f"{instead}, or Azure OpenAI (`--provider azure`), whose fine-tuning is a separate service (check which "
              "base models it fine-tunes in your region)" if provider == "openai" else
              f"{instead}, or another base model or region your Azure resource fine-tunes")
    return (f"the {provider} fine-tuning API refused to create a job for {base_model} "
            f"({provider_message(err)}). Fine-tuning is closed to this account or that base model is gone. OpenAI is "
            f"winding down self-serve fine-tuning — {dates}. Nothing was trained or charged. Instead: {others}.")


def provider_message(err: BaseException, client: Any = None) -> str:
    """The provider's error text (status, code, message) from an SDK exception; a connection failure
    says which kind (DNS, refused, TLS) and which setting names the server."""
    if isinstance(err, openai.APIStatusError):
        body = err.body if isinstance(err.body, dict) else {}
        detail = body.get("error", body) if isinstance(body, dict) else {}
        message = detail.get("message") if isinstance(detail, dict) else None
        code = detail.get("code") if isinstance(detail, dict) else None
        return f"HTTP {err.status_code}" + (f" {code}" if code else "") + f": {message or err.message}"
    if isinstance(err, openai.APIConnectionError):
        return describe_error(err, client)
    return str(err)


@dataclass(frozen=True)
class RemoteJob:
    """What Beep keeps of the provider's job object."""

    id: str
    status: str
    model: str
    fine_tuned_model: str | None
    trained_tokens: int | None
    training_file: str | None
    validation_file: str | None
    result_files: list[str]
    hyperparameters: dict[str, Any]
    metadata: dict[str, str]
    error: str | None
    created_at: int | None
    finished_at: int | None
    #: found at the provider instead of created (an earlier attempt made it, its answer was lost)
    adopted: bool = False

    @classmethod
    def from_sdk(cls, job: Any) -> "RemoteJob":
        error = None
        if job.error is not None and (job.error.message or job.error.code):
            error = f"{job.error.code or 'error'}: {job.error.message or ''}".strip()
            if job.error.param:
                error += f" (param {job.error.param})"
        hyper = job.hyperparameters.model_dump(exclude_none=True) if job.hyperparameters is not None else {}
        return cls(
            id=job.id,
            status=job.status,
            model=job.model,
            fine_tuned_model=job.fine_tuned_model,
            trained_tokens=job.trained_tokens,
            training_file=job.training_file,
            validation_file=job.validation_file,
            result_files=list(job.result_files or []),
            hyperparameters=hyper,
            metadata=dict(job.metadata or {}),
            error=error,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )


class OpenAIFineTuner:
    """Fine-tuning on OpenAI or any OpenAI-compatible server."""

    provider = "openai"
    #: Whether the service keeps ``metadata`` on jobs (used to find a job created just before a crash).
    supports_metadata = True

    def __init__(self, client: openai.OpenAI, *, retry: RetryPolicy | None = None) -> None:
        self.client = client
        self.retry = retry or RetryPolicy(max_tries=6, max_time_seconds=300.0)
        #: where retry notes go (``beep finetune`` sets its console's print): at most one every 10 s
        self.say: Callable[[str], None] | None = None
        self._last_note = float("-inf")

    def _on_wait(self, exc: BaseException, seconds: float, tries: int) -> None:
        now = time.monotonic()
        if self.say is None or now - self._last_note < 10.0:
            return
        self._last_note = now
        self.say(f"retrying in {seconds:.1f} s (attempt {tries}): {describe_error(exc, self.client)}")

    @classmethod
    def from_options(cls, *, base_url: str | None = None, timeout_seconds: float = 60.0,
                     retry: RetryPolicy | None = None, **_: Any) -> "OpenAIFineTuner":
        return cls(make_client(ClientSettings("openai", base_url=base_url, timeout_seconds=timeout_seconds)), retry=retry)

    @property
    def endpoint(self) -> str:
        """Where jobs and files live (the key under which uploads are remembered)."""
        return str(self.client.base_url).rstrip("/")

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return call_with_retry(fn, self.retry, on_wait=self._on_wait)
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            raise ProviderError(provider_message(err, self.client)) from err

    # -- files --------------------------------------------------------------------------------
    def file_exists(self, file_id: str) -> bool:
        try:
            call_with_retry(lambda: self.client.files.retrieve(file_id), self.retry, on_wait=self._on_wait)
            return True
        except openai.NotFoundError:
            return False
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            raise ProviderError(provider_message(err, self.client)) from err

    def find_file(self, filename: str, size: int, purpose: str = "fine-tune") -> str | None:
        """The id of an uploaded file with this name, purpose and size (the newest), if the provider has one."""
        def look() -> str | None:
            best = None
            for info in self.client.files.list(purpose=purpose):
                if (info.filename == filename and info.bytes == size and info.purpose == purpose
                        and getattr(info, "status", None) not in ("error", "deleted")):
                    if best is None or (info.created_at or 0) >= (best.created_at or 0):
                        best = info
            return best.id if best is not None else None

        return self._call(look)

    def upload(self, path: Path, sha256: str) -> str:
        """Upload a JSONL file for fine-tuning under :func:`upload_name`; return its file id.

        After a failed attempt the provider's files are listed first: an upload that went through
        before the failure is adopted, never made twice."""
        content = path.read_bytes()
        name = upload_name(path, sha256)
        try:
            created = create_once(
                lambda: self.client.files.create(file=(name, content), purpose="fine-tune").id,
                lambda: self.find_file(name, len(content)),
                self.retry,
                on_wait=self._on_wait,
            )
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            raise ProviderError(provider_message(err, self.client)) from err
        return created

    def wait_processed(self, file_id: str, *, poll_seconds: float, max_seconds: float = 600.0) -> None:
        """Wait until the provider has imported the file (Azure processes uploads before jobs may use them)."""
        started = time.monotonic()
        deadline = started + max_seconds
        said = started
        while True:
            info = self._call(lambda: self.client.files.retrieve(file_id))
            status = getattr(info, "status", None)
            if status in (None, "processed", "uploaded"):
                return
            if status in ("error", "deleted"):
                raise ProviderError(f"file {file_id} was rejected by the provider: {getattr(info, 'status_details', '')}")
            if time.monotonic() > deadline:
                raise ProviderError(f"file {file_id} is still {status} after {max_seconds:.0f} s")
            if self.say is not None and time.monotonic() - said >= 10.0:
                said = time.monotonic()
                self.say(f"  {said - started:5.0f} s: file {file_id} is {status} at the provider; waiting for it to be processed")
            time.sleep(poll_seconds)

    def download(self, file_id: str) -> bytes:
        return self._call(lambda: self.client.files.content(file_id)).content

    # -- jobs ---------------------------------------------------------------------------------
    def create_job(self, *, base_model: str, training_file: str, validation_file: str | None, suffix: str | None,
                   seed: int | None, hyperparameters: dict[str, Any], metadata: dict[str, str],
                   tag: str | None = None, earlier_attempt_at: float | None = None) -> RemoteJob:
        """Create the job, tagged with ``tag`` (the settings hash; see the module docstring).

        Never sent twice blindly: after a failure the recent jobs are listed and the one carrying
        ``tag`` — or, where the provider dropped the metadata, the one made from the same files,
        base model, suffix, seed and hyperparameters since the attempt started — is returned
        (``adopted=True``) instead of creating another. ``earlier_attempt_at``: Unix seconds when an
        earlier create for these settings started whose outcome was never recorded (Beep died
        waiting for the answer): such a job is looked for before anything is sent."""
        tag = tag or metadata.get(METADATA_KEY)
        if tag and self.supports_metadata:
            metadata = {**metadata, METADATA_KEY: tag}
        if tag and not self.supports_metadata:
            suffix = tagged_suffix(suffix, tag)
        kwargs: dict[str, Any] = {
            "model": base_model,
            "training_file": training_file,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        }
        if validation_file:
            kwargs["validation_file"] = validation_file
        if suffix:
            kwargs["suffix"] = suffix
        if seed is not None:
            kwargs["seed"] = seed
        if self.supports_metadata and metadata:
            kwargs["metadata"] = metadata
        started = time.time() if earlier_attempt_at is None else min(earlier_attempt_at, time.time())
        spec = JobSpec(model=base_model, training_file=training_file, validation_file=validation_file, suffix=suffix,
                       seed=seed, hyperparameters=dict(hyperparameters), since=started)
        adopted = False

        def create() -> Any:
            return self.client.fine_tuning.jobs.create(**kwargs)

        def find() -> Any:
            nonlocal adopted
            job = self._find_sdk_job(tag, spec)
            adopted = job is not None
            return job

        try:
            if earlier_attempt_at is not None:
                found = self._call(find)
                if found is not None:
                    return replace(RemoteJob.from_sdk(found), adopted=True)
            job = create_once(create, find, self.retry, on_wait=self._on_wait)
            return replace(RemoteJob.from_sdk(job), adopted=adopted)
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            if fine_tuning_closed(err):
                raise FineTuningUnavailable(closed_message(err, provider=self.provider, base_model=base_model)) from err
            raise ProviderError(provider_message(err, self.client)) from err

    def _is_tagged(self, job: Any, tag: str | None, spec: JobSpec | None = None) -> bool:
        """Whether ``job`` is the one tagged ``tag``: by its metadata (by its suffix on Azure), else —
        when its metadata lacks Beep's key, as from a server that drops it — by ``spec``."""
        recorded = (job.metadata or {}).get(METADATA_KEY)
        if tag and self.supports_metadata and recorded is not None:
            return recorded == tag
        if tag and not self.supports_metadata:
            mark = "-" + tag[:SUFFIX_TAG_DIGITS]
            if _job_suffix(job).endswith(mark) or mark + ":" in (job.fine_tuned_model or ""):
                return True
        return recorded is None and spec is not None and spec.matches(job)

    def _find_sdk_job(self, tag: str | None, spec: JobSpec | None = None, max_jobs: int = 200) -> Any:
        for n, job in enumerate(self.client.fine_tuning.jobs.list(limit=50)):
            if n >= max_jobs:
                break
            if self._is_tagged(job, tag, spec):
                return job  # newest first
        return None

    def find_job(self, tag: str, *, spec: JobSpec | None = None, max_jobs: int = 200) -> RemoteJob | None:
        """The newest of the recent jobs carrying ``tag`` (the settings hash) — or, without Beep's
        metadata, made as ``spec`` says — if the provider has one."""
        job = self._call(lambda: self._find_sdk_job(tag, spec, max_jobs))
        return RemoteJob.from_sdk(job) if job is not None else None

    def retrieve(self, job_id: str) -> RemoteJob:
        return RemoteJob.from_sdk(self._call(lambda: self.client.fine_tuning.jobs.retrieve(job_id)))

    def cancel(self, job_id: str) -> RemoteJob:
        return RemoteJob.from_sdk(self._call(lambda: self.client.fine_tuning.jobs.cancel(job_id)))

    def events(self, job_id: str, known: set[str]) -> list[Any]:
        """Events not in ``known``, oldest first (the API lists newest first, paged)."""
        page = self._call(lambda: self.client.fine_tuning.jobs.list_events(job_id, limit=50))
        new = []
        for event in _iterate(page):
            if event.id in known:
                break
            new.append(event)
        return list(reversed(new))

    def checkpoints(self, job_id: str) -> list[Any]:
        page = self._call(lambda: self.client.fine_tuning.jobs.checkpoints.list(job_id, limit=50))
        return list(_iterate(page))


def _iterate(page: Any) -> Iterator[Any]:
    """Every item of an SDK cursor page, following pages."""
    yield from page


class AzureFineTuner(OpenAIFineTuner):
    """Fine-tuning on Azure OpenAI through ``openai.AzureOpenAI`` (endpoint, API version).

    The key comes from ``AZURE_OPENAI_API_KEY``. Azure serves a fine-tuned model only once it is
    deployed: the ``deployment`` name given here is recorded with the job so evaluation calls it.
    """

    provider = "azure"
    supports_metadata = False

    def __init__(self, client: openai.OpenAI, *, deployment: str | None = None, retry: RetryPolicy | None = None) -> None:
        super().__init__(client, retry=retry)
        self.deployment = deployment

    @classmethod
    def from_options(cls, *, azure_endpoint: str | None = None, api_version: str | None = None,
                     deployment: str | None = None, timeout_seconds: float = 60.0,
                     retry: RetryPolicy | None = None, **_: Any) -> "AzureFineTuner":
        client = make_client(ClientSettings("azure", azure_endpoint=azure_endpoint, api_version=api_version,
                                            timeout_seconds=timeout_seconds))
        return cls(client, deployment=deployment, retry=retry)

