"""The REST API: `serving.main:app` (FastAPI), reading through `arxiv_kedro.stores`."""
