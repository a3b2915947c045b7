"""`masked`: store URLs as safe to log, with any password replaced by ***."""

from __future__ import annotations

import pytest

from arxiv_kedro.stores import masked


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://arxiv:s3cret@db:5432/arxiv", "postgresql://arxiv:***@db:5432/arxiv"),
        (
            "postgresql+psycopg://arxiv:s3cret@db/arxiv?sslmode=require",
            "postgresql+psycopg://arxiv:***@db/arxiv?sslmode=require",
        ),
        (
            "mongodb://root:s3cret@mongo:27017/?authSource=admin",
            "mongodb://root:***@mongo:27017/?authSource=admin",
        ),
        ("mongodb://u:p@h1:1,h2:2/db?replicaSet=x", "mongodb://u:***@h1:1,h2:2/db?replicaSet=x"),
        ("mongodb+srv://u:p@cluster.example.net/db", "mongodb+srv://u:***@cluster.example.net/db"),
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        ("redis://default:s3cret@redis:6379/0", "redis://default:***@redis:6379/0"),
        ("rediss://u:a:b:c@redis:6380/1", "rediss://u:***@redis:6380/1"),
        ("postgresql://u:p%40ss@db/arxiv", "postgresql://u:***@db/arxiv"),
        ("postgresql://u:p@ss@db/arxiv", "postgresql://u:***@db/arxiv"),
    ],
)
def test_masked_hides_the_password(url: str, expected: str) -> None:
    assert masked(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://arxiv@db:5432/arxiv",
        "mongodb://reader@mongo:27017/arxiv",
        "mongodb://127.0.0.1:27017",
        "mongodb://h1:1,h2:2/db?replicaSet=x",
        "redis://redis:6379/0",
        "sqlite:///data/03_primary/documents.db",
        "sqlite:////tmp/with@sign/documents.db",
    ],
)
def test_masked_keeps_urls_without_a_password(url: str) -> None:
    assert masked(url) == url
