"""Store rows and documents turned into the API's JSON (the shapes of serving.models)."""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import unicodedata
from datetime import datetime
from typing import Any

from fastapi import HTTPException

from arxiv_kedro.llm.summaries import language_name
from arxiv_kedro.stores.documents import DocumentStore
from arxiv_kedro.stores.relational.read_model import MARK_END, MARK_START
from serving.taxonomy import Taxonomy

RANKS = (("label", "probability"), ("label_2", "probability_2"), ("label_3", "probability_3"))


def scored(taxonomy: Taxonomy, category: str, probability: float) -> dict[str, Any]:
    return {
        "category": category,
        "name": taxonomy.name(category),
        "probability": round(float(probability), 4),
    }


def summaries_of(documents: DocumentStore, rows: list[dict[str, Any]]) -> dict[str, dict]:
    """The summary document of each row's current version, by arxiv_id."""
    found = documents.get_many("summaries", [(r["arxiv_id"], r["version"]) for r in rows])
    return {arxiv_id: document for (arxiv_id, _), document in found.items()}


def texts(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """English summary first, then the translations, each with its status."""
    entries = {"en": document.get("summary")} | dict(document.get("translations") or {})
    return {
        language: {
            "language": language_name(language),
            "text": entry.get("text") if entry.get("status") == "done" else None,
            "status": entry.get("status", "pending"),
            "method": entry.get("method"),
            "model": entry.get("model"),
        }
        for language, entry in entries.items()
        if entry
    }


def paper(
    row: dict[str, Any],
    summary: dict[str, Any] | None,
    taxonomy: Taxonomy,
    category: str | None = None,
) -> dict:
    """A list item; listed in a `category`, it says whether it is a cross-list there."""
    prediction = row["prediction"]
    cross_list = {} if category is None else {"cross_list": row["primary_category"] != category}
    return {
        **cross_list,
        **{k: row[k] for k in ("arxiv_id", "version", "title", "authors", "primary_category")},
        "categories": row["categories"],
        "published": _iso(row["published"]),
        "updated": _iso(row["updated"]),
        "abs_url": row["abs_url"],
        "pdf_url": row["pdf_url"],
        "predicted_category": (
            None
            if prediction is None
            else scored(taxonomy, prediction["label"], prediction["probability"])
        ),
        "summary_languages": [
            language for language, t in texts(summary or {}).items() if t["status"] == "done"
        ],
    }


def hit(
    row: dict[str, Any], summary: dict[str, Any] | None, taxonomy: Taxonomy, category: str | None
) -> dict:
    """A search result: the paper, its score and snippet (escaped HTML, matches in <mark>)."""
    snippet = row["snippet"]
    if snippet is not None:
        snippet = html.escape(snippet, quote=False)
        snippet = snippet.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
    return {**paper(row, summary, taxonomy, category), "score": row["score"], "snippet": snippet}


def detail(row: dict[str, Any], summary: dict[str, Any] | None, taxonomy: Taxonomy) -> dict:
    prediction = row["prediction"]
    return {
        **paper(row, summary, taxonomy),
        **{k: row[k] for k in ("abstract", "doi", "journal_ref", "comments")},
        "arxiv_categories": [
            {"category": c, "name": taxonomy.name(c), "primary": c == row["primary_category"]}
            for c in row["categories"]
        ],
        "prediction": None
        if prediction is None
        else {
            "model_name": prediction["model_name"],
            "model_version": prediction["model_version"],
            "predicted_at": _iso(prediction["predicted_at"]),
            "categories": [scored(taxonomy, prediction[c], prediction[p]) for c, p in RANKS],
        },
        "summary": None
        if summary is None
        else {"version": summary["version"], "status": summary["status"], "texts": texts(summary)},
        "versions": [
            {
                "version": n,
                "date": _iso(row["published"])
                if n == 1
                else _iso(row["updated"])
                if n == row["version"]
                else None,
            }
            for n in range(1, row["version"] + 1)
        ],
        "bibtex": bibtex(row),
    }


def bibtex(row: dict[str, Any]) -> str:
    """A BibTeX entry as arXiv's own export writes it (@misc with eprint fields)."""
    year = row["published"].year
    first = row["authors"][0].split()[-1] if row["authors"] else "arxiv"
    word = next(iter(re.findall(r"[a-z]{3,}", row["title"].lower())), "")
    key = unicodedata.normalize("NFKD", f"{first}{year}{word}").encode("ascii", "ignore")
    fields = {
        "title": "{" + " ".join(row["title"].split()) + "}",
        "author": " and ".join(row["authors"]) or None,
        "year": str(year),
        "eprint": row["arxiv_id"],
        "archivePrefix": "arXiv",
        "primaryClass": row["primary_category"],
        "doi": row["doi"],
        "journal": row["journal_ref"],
        "url": row["abs_url"],
    }
    lines = [f"  {name} = {{{value}}}," for name, value in fields.items() if value]
    return "@misc{" + re.sub(r"[^\w]", "", key.decode().lower()) + ",\n" + "\n".join(lines) + "\n}"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# Cursors are opaque to clients: base64 of a small JSON object.


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, fields: dict[str, type]) -> dict[str, Any]:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(position, dict) or set(position) != set(fields):
            raise ValueError
        for name, kind in fields.items():
            if not isinstance(position[name], kind) or isinstance(position[name], bool):
                raise ValueError
        return position
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise HTTPException(400, "invalid cursor: pass the next_cursor of a previous page") from exc
