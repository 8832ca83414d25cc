"""Predictors: a trained model asked for its ranked labels (and people) for examples or live conversations.

Used by evaluation (:mod:`beep.evaluate.api`), live prediction (`beep predict`) and the Slack app, and
importing none of them. One implementation module per kind of provider — :mod:`.local` (the responder
ranker and the label classifier), :mod:`.openai_compatible` (OpenAI, Azure and compatible servers),
:mod:`.hf` (a LoRA adapter on an open model) — chosen through the provider registry
(:mod:`beep.providers`, each entry's ``predictor``). :mod:`.models` resolves which model ``--model``
names; :mod:`.base` holds what they share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from beep.labels import EvaluationInputError, ExportInfo
from beep.predictors.base import ModelOutput, OnOutputs, Predictor, PredictorOptions, people_of_labels
from beep.providers import ProviderCannot, UnknownProvider, get

if TYPE_CHECKING:
    from beep.config import Paths
    from beep.predictors.models import ModelRef

__all__ = ["ModelOutput", "OnOutputs", "Predictor", "PredictorOptions", "make_predictor", "people_of_labels"]


def make_predictor(ref: "ModelRef", export: ExportInfo, options: PredictorOptions,
                   paths: "Paths | None" = None) -> Predictor:
    """The predictor of the model's provider, as the registry names it (``paths``: the DuckDB file
    the ranker replays). Imports the implementation (torch for hf, the OpenAI SDK) only now."""
    try:
        provider = get(ref.provider).require("predict")
        build = provider.implementation("predictor")
    except (UnknownProvider, ProviderCannot) as err:
        raise EvaluationInputError(f"model {ref.name}: {err}") from err
    return build(ref, export, options, paths)
