"""Similar papers: the nearest neighbours of a paper by the cosine of TF-IDF vectors of titles
and abstracts, held by the API process (built from the read model, rebuilt when papers change).
At 72k papers the index costs ~100 MB and answers in a few milliseconds; docs/benchmarks.md has
the numbers and the plan beyond (a vector index in the database)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from arxiv_kedro.stores.relational.read_model import ReadModel

logger = logging.getLogger(__name__)
RECENT = 10_000  # recommendations rank the newest papers
NEGATIVES = 2_000  # papers a user's model learns their tags apart from (5,000: 1.6x slower)


@dataclass(frozen=True)
class Vectors:
    """Unit-length TF-IDF rows of every paper, and each term's postings (the transpose)."""

    ids: np.ndarray  # paper ids (the store's primary key), ascending: the rows' order
    rows: dict[str, int]  # arxiv_id -> row
    recent: np.ndarray  # the RECENT rows published last, the latest first
    recent_matrix: sparse.csr_matrix  # their rows of `matrix`, which recommendations rank
    matrix: sparse.csr_matrix  # papers x terms
    postings: sparse.csr_matrix  # terms x papers
    fingerprint: tuple

    @classmethod
    def build(cls, corpus: list[tuple], fingerprint: tuple) -> Vectors:
        """From (id, arxiv_id, title, abstract, published) rows by id. Words in fewer than 2
        papers or more than half of them say nothing about similarity; sublinear term counts
        keep long abstracts from drowning short ones."""
        vectorizer = TfidfVectorizer(
            sublinear_tf=True,
            stop_words="english",
            min_df=2 if len(corpus) > 10 else 1,
            max_df=0.5,
            dtype=np.float32,
        )
        matrix = vectorizer.fit_transform(f"{row[2]}\n{row[3]}" for row in corpus)
        published = np.array([row[4].timestamp() for row in corpus])
        recent = np.argsort(-published, kind="stable")[:RECENT]
        matrix = matrix.tocsr()
        return cls(
            ids=np.array([row[0] for row in corpus], dtype=np.int64),
            rows={row[1]: i for i, row in enumerate(corpus)},
            recent=recent,
            recent_matrix=matrix[recent],
            matrix=matrix,
            postings=matrix.T.tocsr(),
            fingerprint=fingerprint,
        )

    @property
    def nbytes(self) -> int:
        return (
            self.ids.nbytes
            + self.recent.nbytes
            + sum(
                m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
                for m in (self.matrix, self.postings, self.recent_matrix)
            )
        )

    def nearest(self, arxiv_id: str, limit: int) -> list[tuple[int, float]] | None:
        """The `limit` papers most similar to `arxiv_id` as (paper id, cosine), best first;
        None when the paper is not indexed."""
        row = self.rows.get(arxiv_id)
        if row is None:
            return None
        scores = (self.matrix[row] @ self.postings).toarray().ravel()  # the row's terms only
        scores[row] = -1.0
        count = min(limit, len(scores) - 1)
        return [(paper, score) for paper, score in self._best(scores, count) if score > 0]

    def recommend(self, tagged: list[int], limit: int, *, seed: int) -> list[tuple[int, float]]:
        """The RECENT newest papers ranked by a linear SVM that tells the `tagged` paper ids
        from others (a random sample of NEGATIVES papers: all of them would cost seconds at
        72k and add little), as (paper id, decision value), best first, tagged papers left out.
        """
        wanted = np.asarray(tagged, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        positive = np.unique(rows[self.ids[rows] == wanted])  # papers indexed (not too new)
        others = np.setdiff1d(np.arange(len(self.ids)), positive)
        if not len(positive) or not len(others):
            return []
        sample = np.random.default_rng(seed).choice(
            others, size=min(NEGATIVES, len(others)), replace=False
        )
        train = np.concatenate([positive, sample])
        labels = np.r_[np.ones(len(positive)), np.zeros(len(sample))]
        svm = LinearSVC(C=0.1, class_weight="balanced").fit(self.matrix[train], labels)
        scores = np.full(len(self.ids), -np.inf)
        scores[self.recent] = svm.decision_function(self.recent_matrix)
        scores[positive] = -np.inf
        count = min(limit, int(np.isfinite(scores).sum()))
        return self._best(scores, count)

    def _best(self, scores: np.ndarray, count: int) -> list[tuple[int, float]]:
        """The `count` best rows as (paper id, score), ties to the newer id."""
        if count <= 0:
            return []
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.lexsort((-self.ids[top], -scores[top]))]
        return [(int(self.ids[i]), round(float(scores[i]), 4)) for i in top]


class SimilarityIndex:
    """The vectors of the papers in the store: built on first use, checked against the store at
    most every `refresh_seconds` and rebuilt in the background when papers changed (requests
    meanwhile use the previous vectors)."""

    def __init__(self, refresh_seconds: float):
        self.refresh_seconds = refresh_seconds
        self._vectors: Vectors | None = None
        self._checked = -float("inf")
        self._lock = threading.Lock()
        self._refreshing = False

    def vectors(self, papers: ReadModel) -> Vectors:
        if self._vectors is None:
            with self._lock:  # the first requests wait for the first build
                if self._vectors is None:
                    self._build(papers)
        elif not self._refreshing and time.monotonic() - self._checked >= self.refresh_seconds:
            self._refreshing = True
            threading.Thread(
                target=self._refresh, args=(papers,), name="similarity-refresh", daemon=True
            ).start()
        assert self._vectors is not None
        return self._vectors

    def _refresh(self, papers: ReadModel) -> None:
        try:
            with self._lock:
                if self._vectors is None or papers.fingerprint() != self._vectors.fingerprint:
                    self._build(papers)
                self._checked = time.monotonic()
        except Exception:  # the store went away: keep the vectors, try again later
            logger.exception("Could not refresh the similar-papers index")
        finally:
            self._refreshing = False

    def _build(self, papers: ReadModel) -> None:
        started = time.monotonic()
        fingerprint = papers.fingerprint()
        self._vectors = Vectors.build(papers.texts(), fingerprint)
        self._checked = time.monotonic()
        logger.info(
            "Similar-papers index: %d papers, %.0f MB, built in %.1f s",
            len(self._vectors.ids),
            self._vectors.nbytes / 1e6,
            time.monotonic() - started,
        )
