"""The paper classifier: TF-IDF word 1-2 grams of title and abstract, logistic regression, and a
softmax temperature fitted on papers newer than the ones the regression saw.

The n-grams are hashed (`ngram_counts`: stateless, so the papers of a training run are counted
once for all its fits, in parallel), and a model keeps the hashed n-grams found in at least
`min_df` and at most `max_df` of its training papers, with their IDF: a vocabulary without the
cost of building one per fit (same scores as scikit-learn's vocabulary on the rolling origin,
2-3x faster). The model is probabilistic, so a single temperature is all its probabilities need;
no per-class bias is tuned (biases fitted on one slice of papers fit that slice's mix of
categories and cost top-3 and calibration on the next months). What is corrected is a known
shift of the categories' mix: a category whose share of the newest papers fell below its share
of all the training papers (the stream stopped bringing it) is damped by that ratio, so it stops
taking papers that belong to the categories still coming in.
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
from scipy.special import log_softmax
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.preprocessing import normalize

from arxiv_kedro.classification import INPUT_COLUMNS, OUTPUT_COLUMNS

FIELDS = ("title", "abstract")
FADED = 0.01  # the least a category's probabilities are scaled by when it fades from the stream
# Word 1-2 grams hashed into 2^22 buckets: on the rolling origin (72k papers) the kept buckets
# scored as scikit-learn's vocabulary of the same n-grams did (macro-F1 0.722 vs 0.723).
HASHER = HashingVectorizer(
    ngram_range=(1, 2), n_features=2**22, alternate_sign=False, norm=None, dtype=np.float32
)
CHUNK = 10_000  # papers per parallel hashing job


class IncompatibleModel(ValueError):
    """A model pickled by an earlier version of this class (it had vocabularies, not terms)."""


def ngram_counts(texts: Sequence[str], n_jobs: int = 1) -> sp.csr_matrix:
    """How often each hashed word 1-2 gram occurs in each text (rows: texts); in `n_jobs`
    processes for more than two chunks of texts."""
    if n_jobs == 1 or len(texts) <= 2 * CHUNK:
        return HASHER.transform(texts)
    chunks = Parallel(n_jobs=n_jobs)(
        delayed(HASHER.transform)(texts[i : i + CHUNK]) for i in range(0, len(texts), CHUNK)
    )
    return sp.vstack(chunks, format="csr")


@dataclass(frozen=True)
class Terms:
    """The hashed n-grams a model keeps for one text field (sorted buckets), with their IDF."""

    buckets: np.ndarray
    idf: np.ndarray

    @classmethod
    def fit(cls, counts: sp.csr_matrix, min_df: int, max_df: float) -> Terms:
        """The n-grams in at least `min_df` and at most `max_df` (a share) of the papers;
        scikit-learn's smoothed IDF."""
        papers = counts.shape[0]
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        buckets = np.flatnonzero((df >= min_df) & (df <= max_df * papers)).astype(np.int32)
        if not len(buckets):
            raise ValueError(
                f"no n-gram is in at least min_df={min_df} and at most max_df={max_df} of "
                f"{papers:,} papers: give more papers or loosen the bounds"
            )
        idf = np.log((1 + papers) / (1 + df[buckets])) + 1
        return cls(buckets, idf.astype(np.float32))

    def __len__(self) -> int:
        return len(self.buckets)

    def tfidf(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Rows of unit length: sublinear term frequency times IDF, over the kept n-grams."""
        position = np.searchsorted(self.buckets, counts.indices)
        kept = self.buckets[np.minimum(position, len(self.buckets) - 1)] == counts.indices
        row = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        indptr = np.r_[0, np.cumsum(np.bincount(row[kept], minlength=counts.shape[0]))]
        columns = position[kept]
        data = (1 + np.log(counts.data[kept])) * self.idf[columns]
        matrix = sp.csr_matrix((data, columns, indptr), shape=(counts.shape[0], len(self)))
        return normalize(matrix, copy=False)


def _one_class(
    features: sp.csr_matrix, positive: np.ndarray, weights: np.ndarray, C: float, tol: float
) -> tuple[np.ndarray, float]:
    """One class's logistic regression against all the others (liblinear, dual)."""
    model = LogisticRegression(C=C, solver="liblinear", dual=True, tol=tol, random_state=0)
    model.fit(features, positive, sample_weight=weights)
    return model.coef_.ravel(), float(model.intercept_[0])


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores


@dataclass
class TextClassifier:
    """Predicts a paper's primary arXiv category from its title and abstract.

    `fields` is "separate" (n-grams kept per field, the title's features scaled by
    `title_weight`) or "joined" (title and abstract as one text). `C` and `class_weight`
    ("balanced" or null) go to the logistic regressions; with `half_life_days`, a paper's weight
    halves for every that many days it is older than the newest paper. `multiclass` "ovr" fits
    one regression per class (liblinear), "multinomial" one softmax regression (lbfgs: what
    scikit-learn fits by default; slower, for the baseline). `calibration_fraction` of the
    training papers (the newest: pass them oldest first) fit the softmax temperature; 0 skips
    calibration. With `recent_days`, a class whose share of the papers of the newest
    `recent_days` days is below its share of all the training papers has its probabilities scaled
    by that ratio (at least `FADED`), after the temperature. With `nb_weight` > 0, a complement
    naive Bayes (smoothing `nb_alpha`) votes too: the log-probabilities of both, weighted, before
    the temperature.
    """

    fields: str = "separate"
    min_df: int = 2
    max_df: float = 1.0
    title_weight: float = 1.0
    C: float = 10.0
    class_weight: str | None = "balanced"
    half_life_days: float | None = None
    calibration_fraction: float = 0.15
    tol: float = 1e-3
    multiclass: str = "ovr"
    recent_days: float | None = None
    nb_weight: float = 0.0
    nb_alpha: float = 0.3
    n_jobs: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    classes_: np.ndarray | None = field(default=None, init=False)
    coef_: np.ndarray | None = field(default=None, init=False, repr=False)
    intercept_: np.ndarray | None = field(default=None, init=False, repr=False)
    temperature_: float = field(default=1.0, init=False)
    log_fading_: np.ndarray | None = field(default=None, init=False, repr=False)
    nb_log_prob_: np.ndarray | None = field(default=None, init=False, repr=False)
    _terms: dict[str, Terms] = field(default_factory=dict, init=False, repr=False)

    # A fitted model never changes: pipelines and MLflow's pyfunc wrapper deep-copy their
    # datasets on every call, which would copy the terms and weights for nothing.
    def __deepcopy__(self, memo: dict[int, Any]) -> TextClassifier:
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_terms", {})  # an earlier version's pickle: predict_proba says so
        self.__dict__.update(state)

    # --- features ------------------------------------------------------------------------

    def _texts(self, frame: pd.DataFrame) -> dict[str, list[str]]:
        texts = {column: frame[column].fillna("").astype(str) for column in FIELDS}
        if self.fields == "separate":
            return {name: text.tolist() for name, text in texts.items()}
        if self.fields == "joined":
            return {"text": (texts["title"] + "\n" + texts["abstract"]).tolist()}
        raise ValueError(f"unknown fields {self.fields!r}: use 'separate' or 'joined'")

    def counts(self, frame: pd.DataFrame) -> dict[str, sp.csr_matrix]:
        """The hashed n-gram counts of each text field of the papers (rows in `frame`'s order):
        what `fit` takes as `counts`, to count the papers of several fits once."""
        return {
            name: ngram_counts(texts, self.n_jobs) for name, texts in self._texts(frame).items()
        }

    def _features(self, counts: dict[str, sp.csr_matrix], *, fit: bool = False) -> sp.csr_matrix:
        if fit:
            self._terms = {
                name: Terms.fit(block, self.min_df, self.max_df) for name, block in counts.items()
            }
        blocks = [
            self._terms[name].tfidf(block) * (self.title_weight if name == "title" else 1.0)
            for name, block in counts.items()
        ]
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    # --- fit -----------------------------------------------------------------------------

    def _weights(self, encoded: np.ndarray, published: pd.Series | None) -> np.ndarray:
        """Each paper's weight in the regressions (`encoded`: its class index), averaging 1;
        "balanced": every class weighs the same in all (as scikit-learn's class weights)."""
        if self.class_weight == "balanced":
            weights = 1.0 / np.bincount(encoded)[encoded]
        elif self.class_weight is None:
            weights = np.ones(len(encoded))
        else:
            raise ValueError(f"class_weight must be 'balanced' or null, not {self.class_weight!r}")
        if self.half_life_days:
            if published is None:
                raise ValueError("half_life_days needs the papers' `published` dates")
            age = (published.max() - published).dt.total_seconds().to_numpy() / 86400
            weights = weights * 0.5 ** (age / self.half_life_days)
        return weights * (len(weights) / weights.sum())

    def _fit_linear(
        self, features: sp.csr_matrix, labels: np.ndarray, published: pd.Series | None
    ) -> None:
        """The regression(s), the naive Bayes vote and the fading categories, from `features`."""
        classes, encoded = np.unique(labels, return_inverse=True)
        self.classes_ = classes.astype(object)
        weights = self._weights(encoded, published)
        if self.multiclass == "ovr":
            self.coef_, self.intercept_ = self._one_vs_rest(features, encoded, weights)
        elif self.multiclass == "multinomial":
            model = LogisticRegression(C=self.C, tol=self.tol, max_iter=1000)
            model.fit(features, encoded, sample_weight=weights)
            self.coef_ = np.ascontiguousarray(model.coef_.T, np.float32)
            self.intercept_ = model.intercept_.astype(np.float32)
        else:
            raise ValueError(f"unknown multiclass {self.multiclass!r}: use 'ovr' or 'multinomial'")
        if self.nb_weight:  # unweighted: its complement counts are balanced enough
            bayes = ComplementNB(alpha=self.nb_alpha).fit(features, encoded)
            self.nb_log_prob_ = np.ascontiguousarray(bayes.feature_log_prob_.T, np.float32)
        self.log_fading_ = self._log_fading(encoded, published)

    def _one_vs_rest(
        self, features: sp.csr_matrix, encoded: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One logistic regression per class, one process per core.

        liblinear's dual solver: with far more features than papers it is ~10x faster than the
        primal one, and ~50x faster than a multinomial lbfgs fit on two cores. It visits the
        papers in a random order drawn from one generator per process, seeded by each fit: in
        threads, concurrent fits would draw from the same generator, and a retrain on the same
        papers would not give the same model."""
        # What liblinear takes, made once (joblib memory-maps it for the processes).
        features = sp.csr_matrix(features, dtype=np.float64)
        features.sort_indices()
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_one_class)(features, encoded == k, weights, self.C, self.tol)
            for k in range(len(self.classes_))
        )
        coef = np.ascontiguousarray(np.stack([c for c, _ in fitted], axis=1), np.float32)
        return coef, np.array([b for _, b in fitted], dtype=np.float32)

    def _log_fading(self, encoded: np.ndarray, published: pd.Series | None) -> np.ndarray | None:
        """log(share among the newest `recent_days` days' papers / share among all), capped
        at 0 and floored at log(FADED); None without `recent_days`."""
        if not self.recent_days:
            return None
        if published is None:
            raise ValueError("recent_days needs the papers' `published` dates")
        recent = (published >= published.max() - pd.Timedelta(days=self.recent_days)).to_numpy()
        classes = len(self.classes_)
        share = np.bincount(encoded[recent], minlength=classes) / recent.sum()
        ratio = share / (np.bincount(encoded, minlength=classes) / len(encoded))
        return np.log(np.clip(ratio, FADED, 1.0)).astype(np.float32)

    def _fading(self) -> np.ndarray | float:
        """What the log-probabilities get after the temperature (0 when nothing fades)."""
        return 0.0 if self.log_fading_ is None else self.log_fading_

    def fit(
        self,
        frame: pd.DataFrame,
        labels: Sequence[str],
        counts: dict[str, sp.csr_matrix] | None = None,
    ) -> TextClassifier:
        """Fit on papers ordered oldest first (`frame` has `title`, `abstract` and, for
        `half_life_days`, `published`; `counts`, if given, are `self.counts(frame)`).

        The kept n-grams and their IDF come from every paper's text. With calibration, the
        regressions are first fitted without the newest `calibration_fraction` of the papers,
        whose labels then fit the temperature (how sure the model may be of papers newer than
        its training data); the regressions (and the fading categories) are refitted on every
        paper at the end.
        """
        labels = np.asarray(labels, dtype=object)
        if len(np.unique(labels)) < 3:
            raise ValueError("need papers of at least 3 categories to rank a top 3")
        features = self._features(self.counts(frame) if counts is None else counts, fit=True)
        published = frame.get("published")
        n_fit = len(frame) - int(len(frame) * self.calibration_fraction)
        temperature = 1.0
        if n_fit < len(frame) and len(np.unique(labels[:n_fit])) >= 3:
            older = None if published is None else published.iloc[:n_fit]
            self._fit_linear(features[:n_fit], labels[:n_fit], older)
            temperature = self._temperature(self._linear(features[n_fit:]), labels[n_fit:])
        self._fit_linear(features, labels, published)
        self.temperature_ = temperature
        return self

    def _linear(self, features: sp.csr_matrix) -> np.ndarray:
        """Scores whose softmax is the (uncalibrated) probabilities."""
        scores = np.asarray(features @ self.coef_) + self.intercept_
        if not self.nb_weight:
            return scores
        bayes = np.asarray(features @ self.nb_log_prob_)
        return (1 - self.nb_weight) * log_softmax(scores, axis=1) + self.nb_weight * log_softmax(
            bayes, axis=1
        )

    def _temperature(self, scores: np.ndarray, truth: np.ndarray) -> float:
        """The softmax temperature that maximises the likelihood of the true labels (the
        fading categories damped after it, as `predict_proba` does)."""
        fading = self._fading()
        index = {label: i for i, label in enumerate(self.classes_)}
        known = np.array([label in index for label in truth])
        scores = scores[known]
        target = np.array([index[label] for label in truth[known]])

        def neg_log_likelihood(log_k: float) -> float:
            probabilities = _softmax(scores * np.exp(log_k) + fading)
            return -np.log(probabilities[np.arange(len(target)), target] + 1e-12).mean()

        return float(np.exp(-minimize_scalar(neg_log_likelihood, (-3, 3)).x))

    # --- predict -------------------------------------------------------------------------

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities per paper (rows) and class (`classes_`, columns)."""
        if self.classes_ is None:
            raise ValueError("the classifier is not fitted")
        if not self._terms:
            raise IncompatibleModel(
                "this model was saved by an earlier version of arxiv-kedro (no hashed terms): "
                "retrain (kedro run --pipeline training)"
            )
        scores = self._linear(self._features(self.counts(frame))) / self.temperature_
        return _softmax(scores + self._fading())

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
