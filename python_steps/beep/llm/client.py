"""OpenAI SDK clients with the SDK's retries turned off (Beep retries with `backoff`, see retry.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import openai

#: Providers :func:`make_client` knows.
PROVIDERS = ("openai", "azure")


class MissingCredentials(RuntimeError):
    """No API key (or Azure endpoint) was given or found in the environment."""


@dataclass(frozen=True)
class ClientSettings:
    """How to reach an OpenAI-compatible API.

    ``provider`` is ``openai`` (api.openai.com, or any compatible server through ``base_url`` /
    ``OPENAI_BASE_URL``) or ``azure`` (``AzureOpenAI``: ``azure_endpoint`` / ``AZURE_OPENAI_ENDPOINT``,
    ``api_version`` / ``OPENAI_API_VERSION``, key from ``AZURE_OPENAI_API_KEY``). Keys come from the
    environment only, never from files or options that end up in logs.
    """

    provider: str = "openai"
    base_url: str | None = None
    timeout_seconds: float = 60.0
    azure_endpoint: str | None = None
    api_version: str | None = None


def make_client(settings: ClientSettings) -> openai.OpenAI:
    """An SDK client for ``settings`` with ``max_retries=0``.

    Raises :class:`MissingCredentials` naming the environment variable to set.
    """
    if settings.provider == "openai":
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise MissingCredentials(
                "OPENAI_API_KEY is not set: export it (or use --provider local, which needs no key)."
            )
        base_url = settings.base_url or os.environ.get("OPENAI_BASE_URL") or None
        return openai.OpenAI(
            api_key=key, base_url=base_url, timeout=settings.timeout_seconds, max_retries=0
        )
    if settings.provider == "azure":
        key = os.environ.get("AZURE_OPENAI_API_KEY")
        endpoint = settings.azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
        version = settings.api_version or os.environ.get("OPENAI_API_VERSION")
        missing = [
            name
            for name, value in (
                ("AZURE_OPENAI_API_KEY", key),
                ("AZURE_OPENAI_ENDPOINT", endpoint),
                ("OPENAI_API_VERSION", version),
            )
            if not value
        ]
        if missing:
            raise MissingCredentials(f"Azure OpenAI needs {', '.join(missing)} in the environment.")
        return openai.AzureOpenAI(
            api_key=key,
            azure_endpoint=endpoint,
            api_version=version,
            timeout=settings.timeout_seconds,
            max_retries=0,
        )
    raise ValueError(f"unknown provider {settings.provider!r}: use one of {', '.join(PROVIDERS)}")
