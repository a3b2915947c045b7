"""The paper classifier: hashed word n-grams of title and abstract, a linear model, calibration.

Hashing keeps no vocabulary: featurizing is stateless (so it runs in parallel processes) and the
model file holds only the weights. Probabilities come from the linear scores through a softmax
whose temperature, and a per-class bias, are fitted on the newest slice of the training papers,
which the linear model never sees.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.svm import LinearSVC

from arxiv_kedro.classification import INPUT_COLUMNS, OUTPUT_COLUMNS

_PARALLEL_MIN_ROWS = 4000  # below this, starting worker processes costs more than it saves


def _vectorizer(n_features: int) -> HashingVectorizer:
    return HashingVectorizer(
        ngram_range=(1, 2),
        n_features=n_features,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )


def _hash_counts(texts: Sequence[str], n_features: int) -> sp.csr_matrix:
    return _vectorizer(n_features).transform(texts)


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores


@dataclass
class TextClassifier:
    """Predicts a paper's primary arXiv category from its title and abstract.

    `estimator` is "svc" (LinearSVC) or "logreg" (logistic regression); `C` and `class_weight`
    go to it. `title_weight` scales the title's features against the abstract's.
    `calibration_fraction` of the training papers (the newest: pass them oldest first) fit the
    softmax temperature and the per-class bias that maximises macro-F1; 0 skips calibration.
    """

    estimator: str = "svc"
    C: float = 0.1
    tol: float = 1e-4
    class_weight: str | None = "balanced"
    title_weight: float = 1.0
    n_features: int = 2**20
    calibration_fraction: float = 0.1
    bias_steps: int = 2
    n_jobs: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    classes_: np.ndarray | None = field(default=None, init=False)
    coef_: np.ndarray | None = field(default=None, init=False, repr=False)
    intercept_: np.ndarray | None = field(default=None, init=False, repr=False)
    temperature_: float = field(default=1.0, init=False)
    bias_: np.ndarray | None = field(default=None, init=False, repr=False)
    _idf: dict[str, TfidfTransformer] = field(default_factory=dict, init=False, repr=False)

    # A fitted model never changes: pipelines and MLflow's pyfunc wrapper deep-copy their
    # datasets on every call, which would copy ~100 MB of weights for nothing.
    def __deepcopy__(self, memo: dict[int, Any]) -> TextClassifier:
        return self

    # --- features ------------------------------------------------------------------------

    def _counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        if self.n_jobs == 1 or len(texts) < _PARALLEL_MIN_ROWS:
            return _hash_counts(texts, self.n_features)
        chunk = -(-len(texts) // self.n_jobs)
        parts = Parallel(n_jobs=self.n_jobs)(
            delayed(_hash_counts)(texts[i : i + chunk], self.n_features)
            for i in range(0, len(texts), chunk)
        )
        return sp.vstack(parts, format="csr")

    def _features(self, frame: pd.DataFrame, *, fit: bool = False) -> sp.csr_matrix:
        blocks = []
        for column, weight in (("title", self.title_weight), ("abstract", 1.0)):
            counts = self._counts(frame[column].fillna("").astype(str).tolist())
            if fit:
                self._idf[column] = TfidfTransformer(sublinear_tf=True).fit(counts)
            block = self._idf[column].transform(counts)
            blocks.append(block * weight if weight != 1.0 else block)
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    # --- fit -----------------------------------------------------------------------------

    def _fit_linear(self, features: sp.csr_matrix, labels: np.ndarray) -> None:
        """One-vs-rest linear models, one thread per core (liblinear releases the GIL)."""
        classes, encoded = np.unique(labels, return_inverse=True)
        # As liblinear's own one-vs-rest: a class's weight scales its positive examples only.
        weights = np.ones(len(classes))
        if self.class_weight == "balanced":
            weights = len(labels) / (len(classes) * np.bincount(encoded))
        elif self.class_weight is not None:
            raise ValueError(f"class_weight must be 'balanced' or null, not {self.class_weight!r}")

        def one_class(k: int) -> tuple[np.ndarray, float]:
            model = self._binary_model({1: weights[k], 0: 1.0}).fit(features, encoded == k)
            return model.coef_.ravel(), float(model.intercept_[0])

        fitted = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(one_class)(k) for k in range(len(classes))
        )
        self.classes_ = classes.astype(object)
        self.coef_ = np.ascontiguousarray(np.stack([c for c, _ in fitted], axis=1), np.float32)
        self.intercept_ = np.array([b for _, b in fitted], dtype=np.float32)
        self.bias_ = np.zeros(len(classes), dtype=np.float32)

    def _binary_model(self, class_weight: dict[int, float]) -> LinearSVC | LogisticRegression:
        if self.estimator == "svc":
            return LinearSVC(C=self.C, class_weight=class_weight, tol=self.tol)
        if self.estimator == "logreg":
            return LogisticRegression(
                C=self.C, class_weight=class_weight, solver="liblinear", tol=self.tol
            )
        raise ValueError(f"unknown estimator {self.estimator!r}: use 'svc' or 'logreg'")

    def fit(self, frame: pd.DataFrame, labels: Sequence[str]) -> TextClassifier:
        """Fit on papers ordered oldest first (`frame` has `title` and `abstract`).

        With calibration, the linear models are first fitted without the newest
        `calibration_fraction` of the papers, which then fit the temperature and the class
        biases (they reflect the current mix of categories); the linear models are refitted
        on every paper at the end.
        """
        labels = np.asarray(labels, dtype=object)
        if len(np.unique(labels)) < 3:
            raise ValueError("need papers of at least 3 categories to rank a top 3")
        features = self._features(frame, fit=True)
        n_fit = len(frame) - int(len(frame) * self.calibration_fraction)
        if n_fit < len(frame) and len(np.unique(labels[:n_fit])) >= 2:
            self._fit_linear(features[:n_fit], labels[:n_fit])
            self._calibrate(self._scores(features[n_fit:]), labels[n_fit:])
            temperature, bias = self.temperature_, dict(zip(self.classes_, self.bias_, strict=True))
            self._fit_linear(features, labels)
            self.temperature_ = temperature
            self.bias_ = np.array([bias.get(c, 0.0) for c in self.classes_], dtype=np.float32)
        else:
            self._fit_linear(features, labels)
        return self

    def _scores(self, features: sp.csr_matrix) -> np.ndarray:
        return np.asarray(features @ self.coef_) + self.intercept_

    def _calibrate(self, scores: np.ndarray, truth: np.ndarray) -> None:
        """Temperature by likelihood, per-class biases by coordinate ascent on macro-F1, then
        one common rescaling so that the biased probabilities stay calibrated."""
        index = {label: i for i, label in enumerate(self.classes_)}
        known = np.array([label in index for label in truth])
        scores, truth = scores[known], truth[known]
        target = np.array([index[label] for label in truth])

        def sharpening(logits: np.ndarray) -> float:
            """The factor on `logits` that maximises the likelihood of the true labels."""

            def neg_log_likelihood(log_k: float) -> float:
                probabilities = _softmax(logits * np.exp(log_k))
                return -np.log(probabilities[np.arange(len(target)), target] + 1e-12).mean()

            return float(np.exp(minimize_scalar(neg_log_likelihood, (-2, 5)).x))

        temperature = 1 / sharpening(scores)
        logits = scores / temperature
        present = np.unique(target)

        def macro_f1(bias: np.ndarray) -> float:
            predicted = (logits + bias).argmax(axis=1)
            return f1_score(target, predicted, labels=present, average="macro")

        bias = np.zeros(len(self.classes_))
        best = macro_f1(bias)
        grid = np.linspace(-1.0, 1.0, 9)
        for _ in range(self.bias_steps):
            for k in present:
                for delta in grid:
                    trial = bias.copy()
                    trial[k] += delta
                    score = macro_f1(trial)
                    if score > best + 1e-6:
                        best, bias = score, trial
        # The biases shift probability mass: rescale logits and biases together (same ranking).
        k = sharpening(logits + bias) if bias.any() else 1.0
        self.temperature_ = temperature / k
        self.bias_ = (bias * k).astype(np.float32)

    # --- predict -------------------------------------------------------------------------

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities per paper (rows) and class (`classes_`, columns)."""
        if self.classes_ is None:
            raise ValueError("the classifier is not fitted")
        return _softmax(self._scores(self._features(frame)) / self.temperature_ + self.bias_)

    def predict_top3(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per paper with `OUTPUT_COLUMNS`."""
        return top3_frame(self.predict_proba(frame), self.classes_, index=frame.index)


def top3_frame(
    probabilities: np.ndarray, classes: np.ndarray, index: pd.Index | None = None
) -> pd.DataFrame:
    """The three most probable classes of each row, as `OUTPUT_COLUMNS`."""
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :3]
    best = np.take_along_axis(probabilities, top, axis=1).astype(float)
    data: dict[str, Any] = {}
    for rank, suffix in enumerate(("", "_2", "_3")):
        data[f"label{suffix}"] = classes[top[:, rank]]
        data[f"probability{suffix}"] = best[:, rank]
    return pd.DataFrame(data, index=index, columns=list(OUTPUT_COLUMNS))


def check_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The model input: a DataFrame with text columns `title` and `abstract`."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame with columns {INPUT_COLUMNS}")
    missing = [column for column in INPUT_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"missing input columns {missing}: give {list(INPUT_COLUMNS)}")
    return frame
