"""Store clients shared by the Kedro datasets and the REST API: relational and documents."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


class StoreError(RuntimeError):
    """A store cannot be reached or used; the message names it, with any password masked."""


def masked(url: str) -> str:
    """The URL as safe to log: its password replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))
