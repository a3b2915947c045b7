"""Ingestion: arXiv API or snapshot → normalized, validated papers in the relational store."""

from arxiv_kedro.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
