"""The deterministic sample Slack workspace generator (`beep sample generate`)."""

from beep.sample.generator import (
    SAMPLE_CHANNELS,
    SAMPLE_DAYS,
    SAMPLE_MESSAGES,
    SAMPLE_PEOPLE,
    SAMPLE_SEED,
    GenerationSummary,
    OutputExistsError,
    generate_export,
)

__all__ = [
    "SAMPLE_CHANNELS",
    "SAMPLE_DAYS",
    "SAMPLE_MESSAGES",
    "SAMPLE_PEOPLE",
    "SAMPLE_SEED",
    "GenerationSummary",
    "OutputExistsError",
    "generate_export",
]
