"""The deterministic Slack workspace generator (`beep sample generate`; `--profile large` for a big one).

profiles.py names each profile's settings; workspace.py / large_workspace.py plan who is in the
workspace; simulator.py runs one channel's timeline, with sample_sim.py / large_sim.py deciding who
writes; generator.py writes the export.
"""

from beep.sample.generator import (
    LARGE_CHANNELS,
    LARGE_DAYS,
    LARGE_MESSAGES,
    LARGE_PEOPLE,
    SAMPLE_CHANNELS,
    SAMPLE_DAYS,
    SAMPLE_MESSAGES,
    SAMPLE_PEOPLE,
    SAMPLE_SEED,
    GenerationSummary,
    OutputExistsError,
    generate,
    generate_export,
    generate_large_export,
)
from beep.sample.profiles import DEFAULT_SEED, LARGE, PROFILES, SAMPLE, Profile, Sizes

__all__ = [
    "DEFAULT_SEED",
    "LARGE",
    "LARGE_CHANNELS",
    "LARGE_DAYS",
    "LARGE_MESSAGES",
    "LARGE_PEOPLE",
    "PROFILES",
    "SAMPLE",
    "SAMPLE_CHANNELS",
    "SAMPLE_DAYS",
    "SAMPLE_MESSAGES",
    "SAMPLE_PEOPLE",
    "SAMPLE_SEED",
    "GenerationSummary",
    "OutputExistsError",
    "Profile",
    "Sizes",
    "generate",
    "generate_export",
    "generate_large_export",
]
