"""The provider registry (beep/providers.py): one entry per provider, read by the CLI, fine-tuning, the
LLM client and the predictors. No network: clients are only constructed, never called."""

from __future__ import annotations

import typing
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from beep import providers
from beep.cli import app
from beep.commands.options import AnyProvider, FinetuneProvider, PredictProvider, RefineProvider
from beep.labels import EvaluationInputError, ExportInfo
from beep.llm.client import ClientSettings, MissingCredentials, make_client
from beep.predictors import PredictorOptions, make_predictor
from beep.predictors.models import ModelRef


def test_each_provider_says_what_it_can_and_the_cli_offers_exactly_that() -> None:
    assert providers.names() == ("local", "openai", "azure", "hf")
    assert providers.names(*providers.CHAIN) == ("local", "openai", "azure")  # hf has no refine classifier
    assert typing.get_args(AnyProvider) == providers.names()
    assert typing.get_args(RefineProvider) == providers.names("refine")
    assert typing.get_args(FinetuneProvider) == providers.names("finetune")
    assert typing.get_args(PredictProvider) == providers.names("predict")
    from beep.refine.providers import PROVIDERS

    assert PROVIDERS == ("local", "openai", "azure")
    assert [p.name for p in providers.REGISTRY if p.priced] == ["openai", "azure"]
    assert [p.name for p in providers.REGISTRY if p.runs_here] == ["local", "hf"]


def test_every_named_implementation_exists() -> None:
    for provider in providers.REGISTRY:
        if provider.predict:
            assert callable(provider.implementation("predictor")), provider.name
        if provider.finetune:
            assert callable(provider.implementation("trainer")), provider.name
        if provider.tuner:
            assert hasattr(provider.implementation("tuner"), "from_options"), provider.name
        assert provider.api is None or provider.key_env, provider.name  # an API needs a key


def test_unknown_provider_and_missing_capability_say_what_to_use() -> None:
    with pytest.raises(providers.UnknownProvider, match="choose one of local, openai, azure, hf"):
        providers.get("ollama")
    with pytest.raises(providers.ProviderCannot, match=r"cannot refine .*providers that can: local, openai, azure"):
        providers.get("hf").require(*providers.CHAIN)
    export = ExportInfo("e1", "chat", "gpt-4o-mini", False, ())
    with pytest.raises(EvaluationInputError, match="unknown provider 'ollama'"):
        make_predictor(ModelRef(name="m", provider="ollama"), export, PredictorOptions())


def test_run_refuses_a_provider_that_cannot_do_the_chain_and_says_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--provider", "hf", "--db", str(tmp_path / "beep.duckdb")],
                                terminal_width=400)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "--provider hf: provider 'hf' cannot refine" in text
    assert "beep finetune --provider hf --base-model FOLDER" in text
    assert not (tmp_path / "beep.duckdb").exists()  # refused before any step


def test_clients_read_the_keys_the_registry_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT",
                 "OPENAI_API_VERSION", "OTHER_API_KEY", "OTHER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY is not set"):
        make_client(ClientSettings("openai"))
    with pytest.raises(MissingCredentials, match="AZURE_OPENAI_API_KEY, OPENAI_API_VERSION"):
        make_client(ClientSettings("azure", azure_endpoint="https://example.openai.azure.com"))
    with pytest.raises(ValueError, match="runs on this machine"):
        make_client(ClientSettings("local"))

    # a new OpenAI-compatible provider is one registry entry: its own key and base URL variables
    other = replace(providers.get("openai"), name="other", key_env=("OTHER_API_KEY",), base_url_env="OTHER_BASE_URL")
    monkeypatch.setattr(providers, "REGISTRY", (*providers.REGISTRY, other))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-this-one")
    with pytest.raises(MissingCredentials, match="OTHER_API_KEY is not set"):
        make_client(ClientSettings("other"))
    monkeypatch.setenv("OTHER_API_KEY", "sk-other")
    monkeypatch.setenv("OTHER_BASE_URL", "http://127.0.0.1:9/v1")
    client = make_client(ClientSettings("other"))
    assert client.api_key == "sk-other" and str(client.base_url).startswith("http://127.0.0.1:9/v1")


def test_a_model_trained_here_must_come_from_a_job() -> None:
    import duckdb

    from beep.predictors.models import resolve_model

    con = duckdb.connect()  # no finetune_jobs table: no job is known
    for name, provider in (("local:abc", None), ("hf:abc", None), ("my-adapter", "hf")):
        with pytest.raises(EvaluationInputError, match=f"beep finetune --provider {(provider or name).split(':')[0]}`"):
            resolve_model(con, name, provider=provider)
    assert resolve_model(con, "ft:gpt-4o-mini:acme::x") == ModelRef(name="ft:gpt-4o-mini:acme::x", provider="openai")
    assert resolve_model(con, "my-deployment", provider="azure").provider == "azure"
