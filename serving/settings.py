"""The API's settings: its own knobs from `API_*` variables, the stores from the Kedro catalog of
`KEDRO_ENV` — the same configuration (and environment variables) the pipelines use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from kedro.config import MissingConfigException, OmegaConfigLoader
from kedro.io import DataCatalog
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from arxiv_kedro import settings as project_settings

# The catalog entries the API reads through; `api_cache` is optional (in-process cache without).
STORES = (
    "read_model", "documents", "api_cache", "monitoring_history", "monitoring_report_html"
)  # fmt: skip
LOCAL_CACHE_TTL_SECONDS = 10.0  # no Redis: pipelines cannot invalidate, so entries stay briefly


class Settings(BaseSettings):
    """`API_KEYS=a,b API_CORS_ORIGINS=https://x.org …` (see docs/api.md)."""

    # populate_by_name: `Settings(kedro_env=..., taxonomy=...)` works, not only the env aliases
    model_config = SettingsConfigDict(
        env_prefix="API_", env_ignore_empty=True, populate_by_name=True
    )

    keys: Annotated[tuple[str, ...], NoDecode] = ()
    read_requires_key: bool = False
    rate_limit_per_minute: int = Field(1200, ge=0)
    rate_limit_burst: int = Field(200, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    cache_ttl_seconds: float = Field(300.0, ge=0)
    model_refresh_seconds: float = Field(60.0, ge=1)
    similar_refresh_seconds: float = Field(300.0, ge=1)
    similar_exact_max_papers: int = Field(500_000, ge=0)
    conf_source: Path = Path("conf")
    kedro_env: str = Field("local", validation_alias=AliasChoices("KEDRO_ENV", "API_KEDRO_ENV"))
    taxonomy: Path | None = Field(
        Path("data/01_raw/arxiv-taxonomy.json"),
        validation_alias=AliasChoices("ARXIV_TAXONOMY", "API_TAXONOMY"),
    )
    category_names: Path | None = Field(
        Path("data/01_raw/arxiv-category-names.json"),
        validation_alias=AliasChoices("ARXIV_CATEGORY_NAMES", "API_CATEGORY_NAMES"),
    )

    @field_validator("keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def catalog(self) -> DataCatalog:
        """The store datasets of the project's catalog for `kedro_env`."""
        loader = OmegaConfigLoader(
            conf_source=str(self.conf_source),
            env=self.kedro_env,
            **{
                k: v
                for k, v in project_settings.CONFIG_LOADER_ARGS.items()
                if k != "default_run_env"
            },
        )
        entries = loader["catalog"]
        try:
            credentials = loader["credentials"]
        except MissingConfigException:
            credentials = {}
        return DataCatalog.from_config(
            {name: entries[name] for name in STORES if name in entries}, credentials
        )
