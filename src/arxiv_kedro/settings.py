"""Kedro project settings: configuration loading, with `${env:NAME,default}` in every file."""

import os

from kedro.config import OmegaConfigLoader


def _env(name: str, default: str | None = None) -> str | None:
    """`${env:NAME,default}`: the environment variable, else the default ("" counts as unset)."""
    return os.environ.get(name) or default


CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"env": _env},
}

from arxiv_kedro.hooks import CacheInvalidationHook, ChampionHook, IngestionRunHook  # noqa: E402

HOOKS = (IngestionRunHook(), ChampionHook(), CacheInvalidationHook())
