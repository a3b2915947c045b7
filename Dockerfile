# The project image: Kedro pipelines, the REST API and the UI on Python 3.11, run as a non-root user.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KEDRO_DISABLE_TELEMETRY=true

WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY src ./src
RUN pip install -c requirements.lock . \
    && useradd --create-home --uid 1000 arxiv
COPY conf ./conf
COPY alembic.ini ./
COPY serving ./serving
COPY app ./app
RUN mkdir -p data/01_raw data/03_primary data/06_models data/08_reporting mlartifacts \
    && chown -R arxiv:arxiv data mlartifacts

USER arxiv
CMD ["kedro", "run", "--env", "prod"]
