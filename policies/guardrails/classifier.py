"""Optional classifier for prompt injection: `securevector-guardian-model` (PyPI, Apache-2.0).

A TF-IDF linear model in pure Python whose 2 MB bundle ships inside the wheel; it is loaded offline
(`resolve_runtime(download=False)`), never fetched. It is imported only when a `prompt_injection`
guardrail sets `detector: classifier`, and a missing package is a config error.

Its malicious score is calibrated against its own threshold (about 0.8), so it is mapped onto this
package's scale piecewise-linearly: the model's threshold lands on 0.5, 0 on 0 and 1 on 1.
"""

from __future__ import annotations

import functools
import os
from typing import Any


class ClassifierUnavailable(RuntimeError):
    """The optional classifier package is not installed, or its bundled model is missing."""


@functools.lru_cache(maxsize=1)
def _load() -> Any:
    try:
        from svguardian import resolve_runtime
        from svguardian.model.pure_infer import PureGuardian
    except ImportError as exc:
        raise ClassifierUnavailable("detector: classifier needs `pip install securevector-guardian-model`") from exc
    path = resolve_runtime(download=False)
    if not os.path.exists(path):
        raise ClassifierUnavailable("the securevector-guardian-model bundle is missing from the installed package")
    return PureGuardian.load(path)


class InjectionClassifier:
    """Scores a text in [0, 1] on the same scale as the pattern scorer."""

    def __init__(self) -> None:
        self._model = _load()
        self._threshold = float(self._model.threshold)

    def score(self, text: str) -> float:
        raw = float(self._model.predict(text)["malicious_score"])
        t = self._threshold
        return 0.5 * raw / t if raw < t else 0.5 + 0.5 * (raw - t) / (1.0 - t)
