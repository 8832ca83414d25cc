"""The deterministic sample Slack workspace generator (`beep sample generate`; `--profile large` for a big one)."""

from beep.sample.generator import (
    LARGE_CHANNELS,
    LARGE_DAYS,
    LARGE_MESSAGES,
    LARGE_PEOPLE,
    PROFILES,
    SAMPLE_CHANNELS,
    SAMPLE_DAYS,
    SAMPLE_MESSAGES,
    SAMPLE_PEOPLE,
    SAMPLE_SEED,
    GenerationSummary,
    OutputExistsError,
    generate_export,
    generate_large_export,
)

__all__ = [
    "LARGE_CHANNELS",
    "LARGE_DAYS",
    "LARGE_MESSAGES",
    "LARGE_PEOPLE",
    "PROFILES",
    "SAMPLE_CHANNELS",
    "SAMPLE_DAYS",
    "SAMPLE_MESSAGES",
    "SAMPLE_PEOPLE",
    "SAMPLE_SEED",
    "GenerationSummary",
    "OutputExistsError",
    "generate_export",
    "generate_large_export",
]
