"""What the views share: the API client, cached reads, navigation and small formatting helpers."""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

import streamlit as st

from app.api import ApiClient

# Each view: its page's URL path (browse, the default, is served at /), title and menu icon.
VIEWS = {
    "browse": ("Browse & search", ":material/search:"),
    "digest": ("Daily digest", ":material/newspaper:"),
    "paper": ("Paper", ":material/article:"),
    "author": ("Author", ":material/person:"),
    "library": ("My library", ":material/bookmarks:"),
    "classify": ("Classify my abstract", ":material/category:"),
    "dashboard": ("Dashboard", ":material/bar_chart:"),
    "health": ("Health", ":material/monitor_heart:"),
}


@st.cache_resource
def client() -> ApiClient:
    """One client (one connection pool) per Streamlit process, configured from the environment."""
    return ApiClient.from_env()


@st.cache_data(ttl=60, show_spinner=False)
def categories() -> list[dict[str, Any]]:
    return client().categories()


@st.cache_data(ttl=30, show_spinner=False)
def stats(days: int = 90) -> dict[str, Any]:
    return client().stats(days)


def category_names() -> dict[str, str]:
    """Category id -> official name, for the ids a paper lists without names."""
    return {c["category"]: c["name"] for c in categories()}


def page(view: str) -> st.Page:
    """`view`'s page: its module's `render` at `/view`. Pages are identified by their URL path,
    so main.py's `st.navigation` and every link to a view can each build it."""
    title, icon = VIEWS[view]
    render = importlib.import_module(f"app.{view}").render
    return st.Page(render, title=title, icon=icon, url_path=view, default=view == "browse")


def link(view: str, label: str | None = None, **params: str) -> None:
    """A link to `view` with `params` as its query (empty ones left out): opening it, Back,
    Forward and a reload all land on the same page in the same state."""
    st.page_link(page(view), label=label, query_params={k: v for k, v in params.items() if v})


def menu(shown: str) -> None:
    """The sidebar menu, drawn once the view `shown` ran: one link per view, each back to the
    state (the query) it was last shown in. Paper and Author are there before one was opened
    too: they then ask for an id or a name."""
    st.session_state[f"last_{shown}"] = st.query_params.to_dict()
    for view in VIEWS:
        link(view, **st.session_state.get(f"last_{view}", {}))


def to_url(values: dict[str, str]) -> None:
    """Query parameters of the URL set to `values`, the empty ones left out; parameters already
    right are not written again (each write is a browser history entry)."""
    for name, value in values.items():
        if value and st.query_params.get(name) != value:
            st.query_params[name] = value
        elif not value and name in st.query_params:
            del st.query_params[name]


def day(timestamp: str | None) -> str:
    """An API timestamp as a day: 2025-01-02T18:00:00Z -> 2 Jan 2025."""
    if not timestamp:
        return "—"
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return f"{moment.day} {moment:%b %Y}"


def authors(names: list[str], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return f"{shown} et al." if len(names) > most else shown


def percent(probability: float) -> str:
    return f"{probability:.0%}"
