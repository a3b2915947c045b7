"""A local HTTP server speaking the arXiv-kedro REST API contract (docs/api.md), for UI tests.

`ApiDouble` answers the read endpoints from a handful of real-looking papers (one old-style id,
`hep-th/9901001`; one summary in English, French and German; one paper never classified nor
summarized), `POST /v1/classify` with a deterministic top 3 computed from the abstract's words,
and `/v1/stats` with 30 days of papers per day and a per-class evaluation. Every request is
recorded in `requests`. Test switches, reset by `reset()`:

* `outage = 503`: every request is answered with that status and a `detail`;
* `api_keys = {"k"}`: POSTs need `X-API-Key` (401 without, 403 wrong), like `API_KEYS`;
* `page_cap = 2`: pages hold at most that many items, to exercise `next_cursor`;
* `model = False`: no champion model (`/v1/stats` model null, classify 503).

Run ``python -m tests.support.api_double [--port N]`` to serve by hand (e.g. for `make app`).
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.local_server import LocalServer

JSON_CONTENT_TYPE = "application/json"
MODEL = {"name": "arxiv-classifier", "version": "3"}
CATEGORIES = {  # id -> (official name, group)
    "cs.CL": ("Computation and Language", "Computer Science"),
    "cs.CV": ("Computer Vision and Pattern Recognition", "Computer Science"),
    "cs.LG": ("Machine Learning", "Computer Science"),
    "cs.AI": ("Artificial Intelligence", "Computer Science"),
    "hep-th": ("High Energy Physics - Theory", "Physics"),
    "astro-ph.GA": ("Astrophysics of Galaxies", "Physics"),
    "quant-ph": ("Quantum Physics", "Physics"),
}
# Words that pull a text towards a category in the double's classifier.
KEYWORDS = {
    "cs.CL": {"language", "languages", "text", "translation", "summaries", "speech", "token"},
    "cs.CV": {"image", "images", "video", "vision", "depth", "pixel", "segmentation"},
    "cs.LG": {"learning", "neural", "training", "gradient", "graph", "forecasting"},
    "cs.AI": {"agent", "agents", "planning", "reasoning", "knowledge"},
    "hep-th": {"brane", "branes", "gauge", "string", "supersymmetric", "orientifold"},
    "astro-ph.GA": {"galaxy", "galaxies", "stellar", "halo", "milky", "streams"},
    "quant-ph": {"quantum", "qubit", "qubits", "entanglement", "variational"},
}
LANGUAGES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish"}
DAYS = 30
_TOKEN = re.compile(r'"([^"]+)"|(\S+)')
_WORD = re.compile(r"[a-z0-9]+")


def _text(status: str, text: str | None, language: str, method: str = "llm") -> dict[str, Any]:
    return {
        "language": LANGUAGES[language],
        "text": text if status == "done" else None,
        "status": status,
        "method": method,
        "model": "mistral-small-latest" if method == "llm" else None,
    }


def _summary(version: int, texts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    done = all(t["status"] == "done" for t in texts.values())
    return {"version": version, "status": "complete" if done else "partial", "texts": texts}


def _paper(
    arxiv_id: str,
    version: int,
    title: str,
    authors: list[str],
    categories: list[str],
    published: str,
    abstract: str,
    predicted: list[tuple[str, float]] | None,
    texts: dict[str, dict[str, Any]] | None,
    comments: str | None = None,
) -> dict[str, Any]:
    return {
        "arxiv_id": arxiv_id,
        "version": version,
        "title": title,
        "authors": authors,
        "primary_category": categories[0],
        "categories": categories,
        "published": published,
        "updated": published,
        "abs_url": f"https://arxiv.org/abs/{arxiv_id}v{version}",
        "pdf_url": f"https://arxiv.org/pdf/{arxiv_id}v{version}",
        "abstract": abstract,
        "doi": None,
        "journal_ref": None,
        "comments": comments,
        "arxiv_categories": [
            {"category": c, "name": CATEGORIES[c][0], "primary": i == 0}
            for i, c in enumerate(categories)
        ],
        "prediction": None
        if predicted is None
        else {
            "model_name": MODEL["name"],
            "model_version": MODEL["version"],
            "predicted_at": "2025-01-11T06:00:00Z",
            "categories": [
                {"category": c, "name": CATEGORIES[c][0], "probability": p} for c, p in predicted
            ],
        },
        "summary": None if texts is None else _summary(version, texts),
    }


PAPERS = [
    _paper(
        "2501.01234",
        2,
        "Plain-Language Summaries of Scientific Abstracts with Small Language Models",
        ["Ada Lovelace", "Grace Hopper", "Alan Turing"],
        ["cs.CL", "cs.AI"],
        "2025-01-09T18:00:00Z",
        "We study whether small language models can write faithful plain-language summaries of "
        "scientific abstracts and translate them into other languages. On 2,000 abstracts rated "
        "by readers, a 7B model fine-tuned on expert rewrites matches larger models in accuracy "
        "while halving the reading grade level.",
        [("cs.CL", 0.91), ("cs.AI", 0.06), ("cs.LG", 0.02)],
        {
            "en": _text(
                "done",
                "Small AI models can explain research abstracts in everyday words about as "
                "well as big ones, and the explanations are easier to read.",
                "en",
            ),
            "fr": _text(
                "done",
                "De petits modèles d'IA expliquent les résumés de recherche avec des mots "
                "simples presque aussi bien que les grands, et leurs textes sont plus faciles "
                "à lire.",
                "fr",
            ),
            "de": _text(
                "done",
                "Kleine KI-Modelle erklären Forschungszusammenfassungen in einfachen Worten fast "
                "so gut wie große, und ihre Texte sind leichter zu lesen.",
                "de",
            ),
        },
        comments="12 pages, 4 figures",
    ),
    _paper(
        "2501.02345",
        1,
        "Self-Supervised Depth Estimation from Monocular Video in Low Light",
        ["Hedy Lamarr", "Katherine Johnson"],
        ["cs.CV"],
        "2025-01-08T17:30:00Z",
        "Depth estimation from a single moving camera degrades at night. We train a depth "
        "network on video alone, adding an illumination-invariant photometric loss, and reduce "
        "the absolute relative error by 18% on nighttime driving sequences.",
        [("cs.CV", 0.88), ("cs.LG", 0.08), ("cs.AI", 0.02)],
        {
            "en": _text(
                "done",
                "A camera-only method for judging distances in night-time video.",
                "en",
                "extractive",
            ),
            "fr": _text("pending", None, "fr"),
            "es": _text("failed", None, "es"),
        },
    ),
    _paper(
        "2501.03456",
        1,
        "Graph Neural Networks for Traffic Forecasting under Sensor Failures",
        ["Emmy Noether", "John von Neumann", "Mary Jackson", "Dorothy Vaughan"],
        ["cs.LG", "cs.AI"],
        "2025-01-08T09:00:00Z",
        "Road sensors fail often, and forecasting models trained on complete data break when "
        "they do. We propose a graph neural network that learns which neighbours to trust and "
        "keeps forecasting error flat with up to 40% of sensors missing.",
        [("cs.LG", 0.77), ("cs.AI", 0.14), ("cs.CV", 0.04)],
        None,
    ),
    _paper(
        "2501.04567",
        1,
        "Error-Mitigated Variational Quantum Eigensolvers on Noisy Hardware",
        ["Richard Feynman", "Chien-Shiung Wu"],
        ["quant-ph"],
        "2025-01-07T12:00:00Z",
        "Variational quantum eigensolvers promise chemistry on near-term devices but noise "
        "biases their energies. Combining zero-noise extrapolation with symmetry verification, "
        "we recover ground-state energies within chemical accuracy on a 27-qubit processor.",
        [("quant-ph", 0.95), ("cs.LG", 0.03), ("hep-th", 0.01)],
        {"en": _text("done", "Cleaning up noise lets today's quantum chips do chemistry.", "en")},
    ),
    _paper(
        "2412.09876",
        1,
        "Stellar Streams as Probes of the Milky Way's Dark Matter Halo",
        ["Vera Rubin", "Henrietta Swan Leavitt"],
        ["astro-ph.GA"],
        "2024-12-30T15:00:00Z",
        "Thin stellar streams torn from globular clusters are perturbed by dark matter "
        "subhalos. Modelling twelve streams jointly, we constrain the shape of the Milky Way "
        "halo and the abundance of subhalos below a million solar masses.",
        None,
        None,
    ),
    _paper(
        "hep-th/9901001",
        1,
        "Brane Dynamics and Gauge Theories on Orientifold Planes",
        ["Paul Dirac", "Lise Meitner"],
        ["hep-th"],
        "1999-01-04T00:00:00Z",
        "We study the low-energy dynamics of D-branes near orientifold planes and derive the "
        "gauge theories living on their world-volume, including the supersymmetric "
        "configurations with orthogonal and symplectic gauge groups.",
        [("hep-th", 0.97), ("quant-ph", 0.02), ("astro-ph.GA", 0.01)],
        {
            "en": _text(
                "done", "How membranes in string theory give rise to forces.", "en", "extractive"
            )
        },
        comments="24 pages, LaTeX",
    ),
]
LIST_FIELDS = (
    "arxiv_id", "version", "title", "authors", "primary_category", "categories", "published",
    "updated", "abs_url", "pdf_url",
)  # fmt: skip


@dataclass
class Request:
    """One request the double received."""

    method: str
    path: str  # as sent (not percent-decoded), without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any  # the decoded JSON body, or None


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, payload: Any) -> _Response:
    return _Response(status, json.dumps(payload).encode())


def _error(status: int, detail: str) -> _Response:
    return _json(status, {"detail": detail})


def _invalid(parameter: str, message: str, value: Any) -> _Response:
    """A 422 the way FastAPI reports invalid query parameters: `detail` is a list."""
    detail = [{"type": "value_error", "loc": ["query", parameter], "msg": message, "input": value}]
    return _json(422, {"detail": detail})


class ApiDouble(LocalServer):
    """The contract of docs/api.md over `papers` (a copy of PAPERS by default)."""

    name = "api-double"

    def __init__(self, papers: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.papers = copy.deepcopy(PAPERS if papers is None else papers)
        self.requests: list[Request] = []
        self.outage: int | None = None
        self.api_keys: set[str] = set()
        self.page_cap: int | None = None
        self.model = True

    def reset(self) -> None:
        """Back to a healthy API without keys, and forget the requests."""
        with self._lock:
            self.requests.clear()
        self.outage, self.api_keys, self.page_cap, self.model = None, set(), None, True

    def requests_to(self, method: str, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = Request(
            handler.command,
            url.path,
            parse_qs(url.query),
            {k.lower(): v for k, v in handler.headers.items()},
            body,
        )
        with self._lock:
            self.requests.append(request)
        self._write(handler, self._respond(request, raw))

    def _respond(self, request: Request, raw: bytes) -> _Response:
        if self.outage is not None:
            return _error(self.outage, "the paper store is not available: it is restarting")
        if request.method == "POST":
            refused = self._check_key(request)
            if refused is not None:
                return refused
            if request.path == "/v1/classify":
                return self._classify(request.body)
        elif request.method == "GET":
            if request.path == "/health":
                return _json(200, {"status": "ok", "version": "0.0.0-double"})
            if request.path == "/v1/papers":
                return self._list(request.query)
            if request.path.startswith("/v1/papers/"):
                return self._detail(request.path.removeprefix("/v1/papers/"))
            if request.path == "/v1/search":
                return self._search(request.query)
            if request.path == "/v1/categories":
                return _json(200, {"items": self._categories()})
            if request.path == "/v1/stats":
                return _json(200, self._stats())
        return _error(404, "Not Found")

    def _check_key(self, request: Request) -> _Response | None:
        if not self.api_keys:
            return None
        key = request.headers.get("x-api-key")
        if not key:
            return _error(401, "an API key is required: send it in the X-API-Key header")
        if key not in self.api_keys:
            return _error(403, "this API key is not valid")
        return None

    # --- papers -----------------------------------------------------------------------------

    def _list(self, query: dict[str, list[str]]) -> _Response:
        arg = {k: v[-1] for k, v in query.items()}
        try:
            limit = self._limit(arg)
        except ValueError as exc:
            return _invalid("limit", str(exc), arg.get("limit"))
        days = {}
        for name in ("published_from", "published_to"):
            try:
                days[name] = date.fromisoformat(arg[name]) if name in arg else None
            except ValueError:
                return _invalid(name, "Input should be a valid date", arg[name])
        start, end = days["published_from"], days["published_to"]
        if start and end and start > end:
            return _error(400, "published_from is after published_to")
        has_summary = {"true": True, "false": False}.get(arg.get("has_summary", ""))
        found = []
        for paper in sorted(self.papers, key=lambda p: p["published"], reverse=True):
            day = date.fromisoformat(paper["published"][:10])
            if "category" in arg and paper["primary_category"] != arg["category"]:
                continue
            if (start and day < start) or (end and day > end):
                continue
            if has_summary is not None and (paper["summary"] is not None) != has_summary:
                continue
            found.append(self._item(paper))
        return self._page(found, limit, arg.get("cursor"))

    def _search(self, query: dict[str, list[str]]) -> _Response:
        arg = {k: v[-1] for k, v in query.items()}
        q = arg.get("q", "")
        if not 1 <= len(q) <= 300:
            return _invalid("q", "String should have 1 to 300 characters", q)
        try:
            limit = self._limit(arg)
        except ValueError as exc:
            return _invalid("limit", str(exc), arg.get("limit"))
        terms = [(phrase or word).lower() for phrase, word in _TOKEN.findall(q)]
        hits = []
        for paper in self.papers:
            text = f"{paper['title']} {paper['abstract']}".lower()
            if terms and all(term in text for term in terms):
                score = sum(text.count(term) for term in terms)
                hits.append({**self._item(paper), "score": float(score)})
        hits.sort(key=lambda hit: (-hit["score"], hit["arxiv_id"]))
        return self._page(hits, limit, arg.get("cursor"))

    def _limit(self, arg: dict[str, str]) -> int:
        limit = int(arg.get("limit", 20))
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        return min(limit, self.page_cap) if self.page_cap else limit

    @staticmethod
    def _page(items: list[dict[str, Any]], limit: int, cursor: str | None) -> _Response:
        try:
            offset = int(base64.urlsafe_b64decode(cursor).decode()) if cursor else 0
        except ValueError:
            return _error(400, "invalid cursor")
        more = offset + limit < len(items)
        next_cursor = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
        return _json(
            200,
            {"items": items[offset : offset + limit], "next_cursor": next_cursor if more else None},
        )

    def _item(self, paper: dict[str, Any]) -> dict[str, Any]:
        item = {k: paper[k] for k in LIST_FIELDS}
        prediction = paper["prediction"]
        item["predicted_category"] = prediction["categories"][0] if prediction else None
        texts = (paper["summary"] or {}).get("texts", {})
        item["summary_languages"] = [code for code, t in texts.items() if t["status"] == "done"]
        return item

    def _detail(self, arxiv_id: str) -> _Response:
        versionless = re.sub(r"v\d+$", "", arxiv_id)
        for paper in self.papers:
            if paper["arxiv_id"] == versionless:
                return _json(200, {**self._item(paper), **paper})
        return _error(404, f"no paper {versionless} in the store")

    # --- classify -----------------------------------------------------------------------------

    def _classify(self, body: Any) -> _Response:
        if not isinstance(body, dict) or set(body) != {"title", "abstract"}:
            return _error(422, "send a JSON object with exactly a title and an abstract")
        if not all(isinstance(body[k], str) and body[k].strip() for k in ("title", "abstract")):
            return _error(422, "title and abstract must be non-empty strings")
        if not self.model:
            return _error(503, "no champion model yet: run `kedro run --pipeline training`")
        return _json(200, {"categories": classify(body["abstract"]), "model": dict(MODEL)})

    # --- categories and stats -----------------------------------------------------------------

    def _categories(self) -> list[dict[str, Any]]:
        volume = self._papers_per_day()
        items = []
        for category, (name, group) in CATEGORIES.items():
            papers = sum(row["papers"] for row in volume if row["category"] == category)
            items.append(
                {
                    "category": category,
                    "name": name,
                    "group": group,
                    "papers": papers,
                    "cross_listed": papers // 3 + 5,
                }
            )
        return sorted(items, key=lambda item: (-item["papers"], item["category"]))

    def _papers_per_day(self) -> list[dict[str, Any]]:
        """30 days of deterministic daily volumes, quieter at weekends, up to the newest paper."""
        newest = max(date.fromisoformat(p["published"][:10]) for p in self.papers)
        rows = []
        for back in range(DAYS - 1, -1, -1):
            day = newest - timedelta(days=back)
            weekend = day.weekday() >= 5
            for rank, category in enumerate(CATEGORIES):
                base = max(60 - 9 * rank, 4)
                papers = (base + (day.toordinal() * (rank + 3)) % 17) // (4 if weekend else 1)
                rows.append({"day": day.isoformat(), "category": category, "papers": papers})
        return rows

    def _stats(self) -> dict[str, Any]:
        volume = self._papers_per_day()
        total = sum(row["papers"] for row in volume)
        newest = max(p["published"] for p in self.papers)
        finished = datetime.fromisoformat(newest.replace("Z", "+00:00")) + timedelta(hours=8)
        return {
            "papers": total,
            "summaries": sum(p["summary"] is not None for p in self.papers),
            "predictions": total - 12,
            "quarantined": 3,
            "latest_published": newest,
            "last_ingestion": {
                "status": "succeeded",
                "source": "arxiv-api",
                "started_at": (finished - timedelta(minutes=4)).isoformat(),
                "finished_at": finished.astimezone(UTC).isoformat(),
                "new": 120,
                "updated": 4,
                "quarantined": 0,
            },
            "papers_per_day": volume,
            "model": None
            if not self.model
            else {
                **MODEL,
                "trained_through": "2025-01-05",
                "metrics": {
                    "accuracy": 0.837,
                    "macro_f1": 0.74,
                    "top3_accuracy": 0.98,
                    "ece": 0.04,
                },
                "per_class": [
                    {
                        "category": category,
                        "name": name,
                        "precision": round(0.93 - 0.04 * rank, 3),
                        "recall": round(0.9 - 0.05 * rank, 3),
                        "f1": round(0.91 - 0.045 * rank, 3),
                        "support": 900 - 110 * rank,
                    }
                    for rank, (category, (name, _)) in enumerate(sorted(CATEGORIES.items()))
                ],
            },
        }


def classify(abstract: str) -> list[dict[str, Any]]:
    """The double's model: categories scored by their keywords in the abstract, softmax, top 3."""
    words = _WORD.findall(abstract.lower())
    scores = {c: sum(w in keys for w in words) for c, keys in KEYWORDS.items()}
    weights = {c: math.exp(s) for c, s in scores.items()}
    total = sum(weights.values())
    ranked = sorted(weights, key=lambda c: (-weights[c], c))[:3]
    return [
        {"category": c, "name": CATEGORIES[c][0], "probability": round(weights[c] / total, 4)}
        for c in ranked
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8500)
    args = parser.parse_args()
    double = ApiDouble().start(args.port)
    print(f"arXiv-kedro API double on {double.base_url} (Ctrl-C stops it)")
    double.serve_until_interrupted()


if __name__ == "__main__":
    main()
