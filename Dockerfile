# The project image: the Kedro pipelines, the REST API, the UI and the MLflow server (compose
# picks each service's command). Two stages: the build stage makes /opt/venv from
# requirements.lock; the runtime stage gets that venv and the project files, runs as `arxiv`.
# The base is pinned by digest, in one FROM line that Dependabot updates (it does not read ARGs
# in FROM lines): .github/dependabot.yml.
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91 AS python

FROM python AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /build
# Dependencies first: this layer is rebuilt only when the dependencies change, not the code.
COPY pyproject.toml requirements.lock README.md ./
COPY deploy/install.py ./deploy/
RUN --mount=type=cache,target=/root/.cache/pip \
    python deploy/install.py /opt/venv deps
COPY src ./src
RUN python deploy/install.py /opt/venv project

FROM python AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KEDRO_DISABLE_TELEMETRY=true
RUN useradd --create-home --uid 10001 --user-group arxiv
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# What `kedro run`, `alembic`, uvicorn and streamlit read from the project directory.
COPY pyproject.toml alembic.ini ./
COPY conf ./conf
COPY src ./src
COPY serving ./serving
COPY app ./app
COPY deploy/healthcheck.py ./deploy/
# The folders the services write to (mounted as volumes by compose), owned by the service user.
RUN mkdir -p data/01_raw data/03_primary data/06_models data/08_reporting mlartifacts \
    && chown -R arxiv:arxiv data mlartifacts
USER arxiv
EXPOSE 8500
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "deploy/healthcheck.py"]
CMD ["uvicorn", "serving.main:app", "--host", "0.0.0.0", "--port", "8500"]
