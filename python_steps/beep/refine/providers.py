"""Provider names (kept free of heavy imports so the CLI and `beep run` can name them cheaply)."""

PROVIDERS = ("local", "openai", "azure")
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
#: The model name recorded with local verdicts; bump it when the local features or estimator change.
LOCAL_MODEL_NAME = "fewshot-tfidf-shape-logreg-v2"
