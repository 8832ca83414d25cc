"""Remote fine-tuning through the official SDK: one small class per provider.

:class:`OpenAIFineTuner` talks to api.openai.com or any OpenAI-compatible server (``base_url`` /
``OPENAI_BASE_URL``); :class:`AzureFineTuner` is the same calls through ``openai.AzureOpenAI``
(endpoint, API version; the fine-tuned model is served under a *deployment* name you create in
Azure, recorded with the job). Every call goes through Beep's retry policy (429 with retry-after,
5xx, timeouts); other errors are raised with the provider's message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import openai

from beep.llm.client import ClientSettings, make_client
from beep.llm.retry import RetryPolicy, call_with_retry

T = TypeVar("T")


class ProviderError(RuntimeError):
    """The provider refused a request; the message is the provider's own."""


def provider_message(err: BaseException) -> str:
    """The provider's error text (status, code, message) from an SDK exception."""
    if isinstance(err, openai.APIStatusError):
        body = err.body if isinstance(err.body, dict) else {}
        detail = body.get("error", body) if isinstance(body, dict) else {}
        message = detail.get("message") if isinstance(detail, dict) else None
        code = detail.get("code") if isinstance(detail, dict) else None
        return f"HTTP {err.status_code}" + (f" {code}" if code else "") + f": {message or err.message}"
    if isinstance(err, openai.APIConnectionError):
        return f"cannot reach the provider: {err}"
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
            return call_with_retry(fn, self.retry)
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            raise ProviderError(provider_message(err)) from err

    # -- files --------------------------------------------------------------------------------
    def file_exists(self, file_id: str) -> bool:
        try:
            call_with_retry(lambda: self.client.files.retrieve(file_id), self.retry)
            return True
        except openai.NotFoundError:
            return False
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            raise ProviderError(provider_message(err)) from err

    def upload(self, path: Path) -> str:
        """Upload a JSONL file for fine-tuning; return its file id."""
        content = path.read_bytes()
        created = self._call(lambda: self.client.files.create(file=(path.name, content), purpose="fine-tune"))
        return created.id

    def wait_processed(self, file_id: str, *, poll_seconds: float, max_seconds: float = 600.0) -> None:
        """Wait until the provider has imported the file (Azure processes uploads before jobs may use them)."""
        deadline = time.monotonic() + max_seconds
        while True:
            info = self._call(lambda: self.client.files.retrieve(file_id))
            status = getattr(info, "status", None)
            if status in (None, "processed", "uploaded"):
                return
            if status in ("error", "deleted"):
                raise ProviderError(f"file {file_id} was rejected by the provider: {getattr(info, 'status_details', '')}")
            if time.monotonic() > deadline:
                raise ProviderError(f"file {file_id} is still {status} after {max_seconds:.0f} s")
            time.sleep(poll_seconds)

    def download(self, file_id: str) -> bytes:
        return self._call(lambda: self.client.files.content(file_id)).content

    # -- jobs ---------------------------------------------------------------------------------
    def create_job(self, *, base_model: str, training_file: str, validation_file: str | None, suffix: str | None,
                   seed: int | None, hyperparameters: dict[str, Any], metadata: dict[str, str]) -> RemoteJob:
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
        return RemoteJob.from_sdk(self._call(lambda: self.client.fine_tuning.jobs.create(**kwargs)))

    def find_job(self, metadata_key: str, value: str, *, max_jobs: int = 200) -> RemoteJob | None:
        """The newest job whose metadata has ``metadata_key == value`` (None where metadata is unsupported)."""
        if not self.supports_metadata:
            return None
        page = self._call(lambda: self.client.fine_tuning.jobs.list(limit=50))
        for n, job in enumerate(page):
            if n >= max_jobs:
                break
            if (job.metadata or {}).get(metadata_key) == value:
                return RemoteJob.from_sdk(job)
        return None

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


TUNERS: dict[str, type[OpenAIFineTuner]] = {"openai": OpenAIFineTuner, "azure": AzureFineTuner}
