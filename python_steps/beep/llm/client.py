"""OpenAI SDK clients with the SDK's retries turned off (Beep retries with `backoff`, see retry.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import openai

from beep.providers import get


class MissingCredentials(RuntimeError):
    """No API key (or Azure endpoint) was given or found in the environment."""


@dataclass(frozen=True)
class ClientSettings:
    """How to reach an OpenAI-compatible API.

    ``provider`` is a registry name (:mod:`beep.providers`) whose ``api`` is ``openai`` (api.openai.com,
    or any compatible server through ``base_url`` / its ``base_url_env``, ``OPENAI_BASE_URL``) or ``azure`` (``AzureOpenAI``: ``azure_endpoint`` / ``AZURE_OPENAI_ENDPOINT``,
    ``api_version`` / ``OPENAI_API_VERSION``, key from ``AZURE_OPENAI_API_KEY``). Keys come from the
    environment only, never from files or options that end up in logs.
    """

    provider: str = "openai"
    base_url: str | None = None
    timeout_seconds: float = 60.0
    azure_endpoint: str | None = None
    api_version: str | None = None


def make_client(settings: ClientSettings) -> openai.OpenAI:
    """An SDK client for ``settings`` with ``max_retries=0``: the registry entry of ``settings.provider``
    says which SDK client speaks to it and which environment variables it needs.

    Raises :class:`MissingCredentials` naming the environment variable to set.
    """
    provider = get(settings.provider)  # UnknownProvider (a ValueError) names the known ones
    if provider.api is None:
        raise ValueError(f"provider {provider.name!r} runs on this machine: it has no API to call")
    found = {name: os.environ.get(name) for name in provider.key_env}
    if provider.api == "openai":
        key_name = provider.key_env[0]
        if not found[key_name]:
            raise MissingCredentials(
                f"{key_name} is not set: export it (or use --provider local, which needs no key)."
            )
        base_url = settings.base_url or (os.environ.get(provider.base_url_env) if provider.base_url_env else None) or None
        return openai.OpenAI(
            api_key=found[key_name], base_url=base_url, timeout=settings.timeout_seconds, max_retries=0
        )
    # azure: the key, the endpoint and the API version (the latter two may be given as options)
    found["AZURE_OPENAI_ENDPOINT"] = settings.azure_endpoint or found.get("AZURE_OPENAI_ENDPOINT")
    found["OPENAI_API_VERSION"] = settings.api_version or found.get("OPENAI_API_VERSION")
    missing = [name for name in provider.key_env if not found.get(name)]
    if missing:
        raise MissingCredentials(f"Azure OpenAI needs {', '.join(missing)} in the environment.")
    return openai.AzureOpenAI(
        api_key=found["AZURE_OPENAI_API_KEY"],
        azure_endpoint=found["AZURE_OPENAI_ENDPOINT"],
        api_version=found["OPENAI_API_VERSION"],
        timeout=settings.timeout_seconds,
        max_retries=0,
    )
