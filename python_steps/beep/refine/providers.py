"""The providers that refine (read from the registry, :mod:`beep.providers`) and refine's model names."""

from beep.providers import names

#: The providers that can refine (``local``, ``openai``, ``azure``).
PROVIDERS = names("refine")
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
#: The model name recorded with local verdicts; bump it when the local features or estimator change.
LOCAL_MODEL_NAME = "fewshot-tfidf-shape-logreg-v2"
