"""The provider registry: who can refine, fine-tune and predict, chosen in one place.

In the spirit of simonw/llm's model registry: one :class:`Provider` object per provider says what it
can do and what it needs, and names the modules that implement it (imported only when used, so the
CLI can list providers without loading torch or the OpenAI SDK). Everything that offers or dispatches
on a provider reads this table: the CLI's ``--provider`` choices and help, ``beep run``'s check,
`beep refine`'s names (:mod:`beep.refine.providers`), fine-tuning (:func:`beep.finetune.api.finetune`),
the OpenAI-compatible client (:func:`beep.llm.client.make_client`) and the predictors
(:func:`beep.predictors.make_predictor`).

Adding a provider = one entry in :data:`REGISTRY` plus its implementation module(s): e.g. another
OpenAI-compatible server with its own key is an entry with ``api="openai"``, its ``key_env`` and
``base_url_env`` and the OpenAI-compatible implementations; nothing else changes.

This module is a leaf: it imports nothing of Beep.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

#: What a provider may be asked to do.
Capability = Literal["refine", "finetune", "predict"]
#: The capabilities `beep run` needs of its one provider: the whole chain.
CHAIN: tuple[Capability, ...] = ("refine", "finetune", "predict")


class UnknownProvider(ValueError):
    """A provider name the registry does not know; the message lists the ones it does."""


class ProviderCannot(ValueError):
    """A provider was asked for something it cannot do; the message says why and what to use instead."""


@dataclass(frozen=True)
class Provider:
    """One provider: what it can do, what it needs, where it is implemented."""

    name: str
    #: One line for ``--help`` and docs.
    summary: str
    refine: bool
    finetune: bool
    predict: bool  # predict / evaluate with the models it fine-tuned (or serves)
    #: Its calls cost money: prices come from seeds/model_prices.csv and ``--max-cost`` budgets apply.
    priced: bool
    #: Trains and predicts on this machine: no job at a provider to follow (``--attach``) or cancel.
    runs_here: bool
    #: The OpenAI SDK client that speaks to it (``openai.OpenAI`` / ``openai.AzureOpenAI``), if any.
    api: Literal["openai", "azure"] | None = None
    #: Environment variables it needs (keys, endpoints); never read from options that end up in logs.
    key_env: tuple[str, ...] = ()
    #: The environment variable of an OpenAI-compatible base URL (``--base-url`` overrides it).
    base_url_env: str | None = None
    #: The optional dependency group it needs installed (``uv sync --extra NAME``).
    extra: str | None = None
    #: ``module:function`` building its predictor: ``(ref, export, options, paths) -> Predictor``.
    predictor: str | None = None
    #: ``module:function`` that fine-tunes: ``(paths, request, export, console) -> FinetuneResult``.
    trainer: str | None = None
    #: ``module:Class`` of its remote fine-tuning client (a :class:`beep.finetune.remote.OpenAIFineTuner`).
    tuner: str | None = None
    #: Why it cannot do what it cannot (said by :meth:`require`), with what to do instead.
    limits: str = ""

    def can(self, capability: Capability) -> bool:
        return bool(getattr(self, capability))

    def require(self, *capabilities: Capability) -> "Provider":
        """This provider, or :class:`ProviderCannot` naming the first capability it lacks and why."""
        for capability in capabilities:
            if not self.can(capability):
                able = ", ".join(p.name for p in REGISTRY if p.can(capability))
                raise ProviderCannot(f"provider {self.name!r} cannot {_VERB[capability]} (providers that can: {able})"
                                     + (f": {self.limits}" if self.limits else ""))
        return self

    def implementation(self, what: Literal["predictor", "trainer", "tuner"]) -> Any:
        """The object ``module:name`` that :attr:`predictor` / :attr:`trainer` / :attr:`tuner` names, imported now."""
        target = getattr(self, what)
        if not target:
            raise ProviderCannot(f"provider {self.name!r} has no {what}")
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)


_VERB = {"refine": "refine (judge examples strong or weak)", "finetune": "fine-tune",
         "predict": "predict or evaluate"}

#: Every provider, in the order the CLI lists them (the first is the default).
REGISTRY: tuple[Provider, ...] = (
    Provider(
        name="local",
        summary="offline and free: the LightGBM responder ranker (or a scikit-learn label model) and a "
                "scikit-learn refine classifier",
        refine=True, finetune=True, predict=True, priced=False, runs_here=True,
        predictor="beep.predictors.local:make_predictor",
        trainer="beep.finetune.api:finetune_local",
    ),
    Provider(
        name="openai",
        summary="the OpenAI API or any OpenAI-compatible server (OPENAI_API_KEY; OPENAI_BASE_URL or --base-url); "
                "costs money",
        refine=True, finetune=True, predict=True, priced=True, runs_here=False,
        api="openai", key_env=("OPENAI_API_KEY",), base_url_env="OPENAI_BASE_URL",
        predictor="beep.predictors.openai_compatible:make_predictor",
        trainer="beep.finetune.api:finetune_remote",
        tuner="beep.finetune.remote:OpenAIFineTuner",
    ),
    Provider(
        name="azure",
        summary="Azure OpenAI (AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT, OPENAI_API_VERSION); costs money",
        refine=True, finetune=True, predict=True, priced=True, runs_here=False,
        api="azure", key_env=("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION"),
        predictor="beep.predictors.openai_compatible:make_predictor",
        trainer="beep.finetune.api:finetune_remote",
        tuner="beep.finetune.remote:AzureFineTuner",
    ),
    Provider(
        name="hf",
        summary="LoRA on an open model folder you downloaded (--base-model), on this machine (`uv sync --extra hf`)",
        refine=False, finetune=True, predict=True, priced=False, runs_here=True, extra="hf",
        predictor="beep.predictors.hf:make_predictor",
        trainer="beep.finetune.api:finetune_hf",
        limits="it fine-tunes and scores an open model but has no refine classifier, so `beep run` cannot use it "
               "for the whole chain; run `beep run --provider local`, then `beep finetune --provider hf "
               "--base-model FOLDER` and `beep evaluate` (docs/finetune-open-model.md)",
    ),
)


def get(name: str) -> Provider:
    """The provider called ``name``; :class:`UnknownProvider` (listing the known ones) otherwise."""
    for provider in REGISTRY:
        if provider.name == name:
            return provider
    raise UnknownProvider(f"unknown provider {name!r}: choose one of {', '.join(p.name for p in REGISTRY)}")


def names(*capabilities: Capability) -> tuple[str, ...]:
    """The providers that can do every one of ``capabilities`` (all providers when none is given)."""
    return tuple(p.name for p in REGISTRY if all(p.can(c) for c in capabilities))


def describe(*capabilities: Capability) -> str:
    """``name (summary); ...`` of the providers that can do ``capabilities``: for ``--provider`` help."""
    return "; ".join(f"{p.name} ({p.summary})" for p in REGISTRY if all(p.can(c) for c in capabilities))
