"""Similar papers: the nearest neighbours of a paper by the cosine of TF-IDF vectors of titles
and abstracts, held by the API process (built from the read model, extended as papers arrive).
Up to `exact_papers` papers (API_SIMILAR_EXACT_MAX_PAPERS) every paper sharing a word is
scored: exact, and faster than a graph at that size. Beyond, an HNSW graph (usearch) over
256-dimension projections of the TF-IDF proposes candidates, which the exact TF-IDF cosine ranks:
queries cost about the same at a million papers as at 72k; scores stay exact, recall does not.
docs/benchmarks.md has the numbers, the engines compared and the plan beyond.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC
from usearch.index import Index

from arxiv_kedro.stores.relational.read_model import ReadModel

logger = logging.getLogger(__name__)
RECENT = 10_000  # recommendations rank the newest papers
NEGATIVES = 2_000  # papers a user's model learns their tags apart from (5,000: 1.6x slower)
DIMENSIONS = 256  # of the projection the graph searches
# The graph proposes, the exact cosine ranks: at 72k, 100 / 300 / 1,000 candidates find 59 / 74
# / 86 % of the exact top 10 (the projection loses the rare words), for ~3 / 10 / 16 ms.
CANDIDATES = 1_000
SVD_SAMPLE = 20_000  # papers the projection is fitted on: 4-8x faster than 72k, same recall
REFIT_GROWTH = 1.25  # refit words and projection once the store grew by a quarter since
# The exact scan reads the postings of the paper's words: p95 7.5 ms at 72k, 19 ms at 720k
# (docs/benchmarks.md), ~1.6 KB per paper; past this size the graph's cost stops growing.
EXACT_PAPERS = 500_000


@dataclass(frozen=True)
class Embedding:
    """The TF-IDF vocabulary and its projection to DIMENSIONS, fitted once on the papers then
    applied to the papers that arrive (their words outside the vocabulary are left out until
    the next refit)."""

    vectorizer: TfidfVectorizer
    svd: TruncatedSVD | None  # None: no graph, nothing to project

    @classmethod
    def fit(cls, texts: list[str], project: bool = True) -> Embedding:
        """Words in fewer than 2 papers or more than half of them say nothing about similarity;
        sublinear term counts keep long abstracts from drowning short ones. The projection is
        fitted on a random sample of SVD_SAMPLE papers (recall@10 at 72k: 0.863 against 0.862
        fitted on all; 9 s against 39-77 s)."""
        vectorizer = TfidfVectorizer(
            sublinear_tf=True,
            stop_words="english",
            min_df=2 if len(texts) > 10 else 1,
            max_df=0.5,
            dtype=np.float32,
        )
        matrix = vectorizer.fit_transform(texts)
        if not project:
            return cls(vectorizer, None)
        dimensions = max(1, min(DIMENSIONS, matrix.shape[1] - 1, matrix.shape[0]))
        svd = TruncatedSVD(dimensions, algorithm="randomized", n_iter=4, random_state=0)
        rng = np.random.default_rng(0)
        sample = rng.choice(matrix.shape[0], min(SVD_SAMPLE, matrix.shape[0]), replace=False)
        return cls(vectorizer, svd.fit(matrix[sample]))

    def tfidf(self, texts: Iterable[str]) -> sparse.csr_matrix:
        """Unit-length TF-IDF rows."""
        return self.vectorizer.transform(texts).tocsr()

    def project(self, matrix: sparse.csr_matrix) -> np.ndarray:
        """Unit-length projections of TF-IDF rows (a row without known words stays zero)."""
        dense = self.svd.transform(matrix).astype(np.float32)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return dense / np.maximum(norms, 1e-12)


def texts_of(corpus: list[tuple]) -> list[str]:
    return [f"{row[2]}\n{row[3]}" for row in corpus]


@dataclass(frozen=True)
class Vectors:
    """Unit-length TF-IDF rows of every paper, and the postings of each word (exact scan) or
    the graph over the rows' projections."""

    ids: np.ndarray  # paper ids (the store's primary key), ascending: the rows' order
    rows: dict[str, int]  # arxiv_id -> row
    recent: np.ndarray  # the RECENT rows published last, the latest first
    recent_matrix: sparse.csr_matrix  # their rows of `matrix`, which recommendations rank
    matrix: sparse.csr_matrix  # papers x terms
    published: np.ndarray  # timestamps by row
    embedding: Embedding
    postings: sparse.csr_matrix | None  # terms x papers (the transpose), without a graph
    graph: Index | None  # keys are rows; may hold rows newer than these Vectors (`extended`)
    graph_lock: threading.Lock  # usearch's per-thread search contexts are not for two callers
    fitted_on: int  # papers the embedding was fitted on
    fingerprint: tuple

    @classmethod
    def build(
        cls, corpus: list[tuple], fingerprint: tuple, exact_papers: int = EXACT_PAPERS
    ) -> Vectors:
        """From (id, arxiv_id, title, abstract, published) rows by id; a graph for more than
        `exact_papers` of them."""
        texts = texts_of(corpus)
        embedding = Embedding.fit(texts, project=len(corpus) > exact_papers)
        graph = (
            None
            if embedding.svd is None
            else Index(ndim=embedding.svd.n_components, metric="cos", dtype="f16")
        )
        vectors = cls._of(
            ids=np.array([row[0] for row in corpus], dtype=np.int64),
            rows={row[1]: i for i, row in enumerate(corpus)},
            published=np.array([row[4].timestamp() for row in corpus]),
            matrix=embedding.tfidf(texts),
            embedding=embedding,
            graph=graph,
            graph_lock=threading.Lock(),
            fitted_on=len(corpus),
            fingerprint=fingerprint,
        )
        vectors._index(0)
        return vectors

    def extended(self, corpus: list[tuple], fingerprint: tuple) -> Vectors:
        """These vectors and the new papers (rows by id, all newer than ours), embedded without
        refitting. The graph is shared: requests on these vectors meanwhile skip the new rows."""
        start = len(self.ids)
        vectors = self._of(
            ids=np.r_[self.ids, np.array([row[0] for row in corpus], dtype=np.int64)],
            rows=self.rows | {row[1]: start + i for i, row in enumerate(corpus)},
            published=np.r_[self.published, [row[4].timestamp() for row in corpus]],
            matrix=sparse.vstack([self.matrix, self.embedding.tfidf(texts_of(corpus))]).tocsr(),
            embedding=self.embedding,
            graph=self.graph,
            graph_lock=self.graph_lock,
            fitted_on=self.fitted_on,
            fingerprint=fingerprint,
        )
        vectors._index(start)
        return vectors

    @classmethod
    def _of(
        cls, *, published: np.ndarray, matrix: sparse.csr_matrix, graph: Index | None, **fields
    ) -> Vectors:
        recent = np.argsort(-published, kind="stable")[:RECENT]
        return cls(
            recent=recent,
            recent_matrix=matrix[recent],
            matrix=matrix,
            published=published,
            postings=matrix.T.tocsr() if graph is None else None,
            graph=graph,
            **fields,
        )

    def _index(self, start: int) -> None:
        """Adds rows from `start` on to the graph, in batches (memory stays flat)."""
        if self.graph is None:
            return
        for first in range(start, len(self.ids), 50_000):
            last = min(first + 50_000, len(self.ids))
            batch = self.embedding.project(self.matrix[first:last])
            with self.graph_lock:
                self.graph.add(np.arange(first, last), batch, threads=2)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays and the graph (whose memory is its serialized size)."""
        return (
            self.ids.nbytes
            + self.recent.nbytes
            + self.published.nbytes
            + sum(
                m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
                for m in (self.matrix, self.recent_matrix, self.postings)
                if m is not None
            )
            + (0 if self.graph is None else self.graph.serialized_length)
        )

    def nearest(self, arxiv_id: str, limit: int) -> list[tuple[int, float]] | None:
        """The `limit` papers most similar to `arxiv_id` as (paper id, cosine), best first;
        None when the paper is not indexed. Without a graph every paper sharing a word is
        scored; with one, its CANDIDATES nearest projections are ranked by their exact TF-IDF
        cosine, so a miss costs recall, never a wrong score."""
        row = self.rows.get(arxiv_id)
        if row is None:
            return None
        if self.postings is not None:
            scores = (self.matrix[row] @ self.postings).toarray().ravel()  # the row's words only
            scores[row] = -1.0
            count = min(limit, len(scores) - 1)
            return [(paper, score) for paper, score in self._best(scores, count) if score > 0]
        query = self.embedding.project(self.matrix[row])[0]
        with self.graph_lock:
            found = self.graph.search(query, CANDIDATES + 1).keys
        found = found[(found != row) & (found < len(self.ids))]  # the graph may be ahead
        scores = np.zeros(len(self.ids), dtype=np.float32)
        scores[found] = (self.matrix[found] @ self.matrix[row].T).toarray().ravel()
        best = self._best(scores, min(limit, len(found)), among=found)
        return [(paper, score) for paper, score in best if score > 0]

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

    def _best(
        self, scores: np.ndarray, count: int, among: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The `count` best rows (of `among`, or all) as (paper id, score), ties to the newer id."""
        if count <= 0:
            return []
        rows = np.arange(len(scores)) if among is None else among
        top = rows[np.argpartition(-scores[rows], count - 1)[:count]]
        top = top[np.lexsort((-self.ids[top], -scores[top]))]
        return [(int(self.ids[i]), round(float(scores[i]), 4)) for i in top]


class SimilarityIndex:
    """The vectors of the papers in the store: built on first use, checked against the store at
    most every `refresh_seconds` and updated in the background when papers changed (requests
    meanwhile use the previous vectors). New papers are added to the vectors; a changed or
    removed paper, or a store grown by REFIT_GROWTH since the fit, rebuilds them."""

    def __init__(self, refresh_seconds: float, exact_papers: int = EXACT_PAPERS):
        self.refresh_seconds = refresh_seconds
        self.exact_papers = exact_papers
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
                self._update(papers)
                self._checked = time.monotonic()
        except Exception:  # the store went away: keep the vectors, try again later
            logger.exception("Could not refresh the similar-papers index")
        finally:
            self._refreshing = False

    def _update(self, papers: ReadModel) -> None:
        old = self._vectors
        fingerprint = papers.fingerprint()
        if old is not None and fingerprint == old.fingerprint:
            return
        appended = (
            old is not None
            and papers.fingerprint(through=int(old.ids[-1])) == old.fingerprint
            and fingerprint[0] < REFIT_GROWTH * old.fitted_on
            and (old.graph is not None or fingerprint[0] <= self.exact_papers)
        )
        if not appended:
            self._build(papers)
            return
        started = time.monotonic()
        new = papers.texts(after=int(old.ids[-1]))
        self._vectors = old.extended(new, papers.fingerprint(through=int(new[-1][0])))
        logger.info(
            "Similar-papers index: %d papers added in %.1f s",
            len(new),
            time.monotonic() - started,
        )

    def _build(self, papers: ReadModel) -> None:
        started = time.monotonic()
        fingerprint = papers.fingerprint()
        self._vectors = Vectors.build(papers.texts(), fingerprint, self.exact_papers)
        self._checked = time.monotonic()
        logger.info(
            "Similar-papers index: %d papers, %.0f MB, built in %.1f s",
            len(self._vectors.ids),
            self._vectors.nbytes / 1e6,
            time.monotonic() - started,
        )
