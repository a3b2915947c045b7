"""Every long-running service of docker-compose.yaml, started OUTSIDE Docker with the command,
environment and health check that `docker compose config` resolves for it, from the files its
image holds (made here by the image's own Dockerfile steps: `project_image`, `airflow_image`),
after the jobs it waits for (Airflow's init) have run to their end. Only what a
container finds elsewhere is moved: its peers' host names to this machine's servers (PostgreSQL,
Redis, MongoDB or nx-27017), the image's paths and volumes to local folders, its port to a free
one. Each must pass its own health check, answer on its published address and its compose name,
and reach what it depends on."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pymongo
import pytest
import redis

from tests.conftest import POSTGRES_ADMIN_URL, REDIS_URL, DocumentServer, free_port
from tests.deployment.stack import LocalImage, stages

# The first test also makes both images here (~8 min at load 4) and starts the stack.
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(1800)]

# How each Dockerfile's image is made on this machine: the fixture giving its LocalImage.
IMAGES = {"Dockerfile": "project_image", "Dockerfile.airflow": "airflow_image"}
# The servers the stack runs from public images, by image name, and what stands in for each here.
DATABASES = ("postgres", "mongo", "redis")
REDIS_DB = 11  # this module's own database on the machine's Redis, emptied before and after
STARTUP_SECONDS = 240  # MLflow migrates its database first, and the machine may be busy
ADDRESS = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?:(?P<userinfo>[^@/\s\"']*)@)?"
    r"(?P<host>[A-Za-z0-9_.-]+):(?P<port>\d+)(?P<path>/[^\s?,\"']*)?(?P<query>\?[^\s,\"']*)?"
)
LOOPBACK = re.compile(r"(?<=//)(?:127\.0\.0\.1|localhost):(?P<port>\d+)")


def servers(services: dict[str, Any]) -> list[str]:
    """The services built from this repository that run until stopped (a job's health check
    is disabled), each after those it depends on."""
    wanted = {
        name
        for name, service in services.items()
        if "build" in service and not (service.get("healthcheck") or {}).get("disable")
    }
    ordered: list[str] = []

    def visit(name: str) -> None:
        for dependency in services[name].get("depends_on") or {}:
            if dependency in wanted:
                visit(dependency)
        if name not in ordered:
            ordered.append(name)

    for name in sorted(wanted):
        visit(name)
    return ordered


def database(service: dict[str, Any]) -> str | None:
    image = service.get("image") or ""
    return next((kind for kind in DATABASES if image.startswith(f"{kind}:")), None)


@dataclass
class Network:
    """This machine standing in for the compose network: its database servers, and a free local
    port for each port a service listens on."""

    services: dict[str, Any]
    postgres_databases: dict[str, str]  # compose database name -> this test's database
    mongo_url: str
    redis_url: str
    ports: dict[tuple[str, int], int] = field(default_factory=dict)

    def local_port(self, service: str, port: int) -> int:
        return self.ports.setdefault((service, port), free_port())

    def listening(self, name: str) -> list[int]:
        """The ports `name` listens on: published ones, and those its peers address."""
        ports = {int(p["target"]) for p in self.services[name].get("ports") or []}
        text = json.dumps(self.services)
        ports |= {int(m["port"]) for m in ADDRESS.finditer(text) if m["host"] == name}
        return sorted(ports)

    def address(self, match: re.Match[str]) -> str:
        """A compose address `scheme://[user@]host:port/path` as this machine serves it."""
        host, path = match["host"], match["path"] or ""
        kind = database(self.services[host])
        if kind == "postgres":
            admin = urlsplit(POSTGRES_ADMIN_URL)
            local = f"{admin.username or 'postgres'}@{admin.hostname}:{admin.port or 5432}"
            return f"{match['scheme']}://{local}/{self.postgres_databases[path.strip('/')]}"
        if kind == "mongo":
            return self.mongo_url  # without credentials: nx-27017 and CI's MongoDB have none
        if kind == "redis":
            return self.redis_url
        port = self.local_port(host, int(match["port"]))
        return f"{match['scheme']}://127.0.0.1:{port}{path}{match['query'] or ''}"

    def moved(self, text: str) -> str:
        """`text` with every address of a compose service moved to this machine."""
        return ADDRESS.sub(lambda m: self.address(m) if m["host"] in self.services else m[0], text)


@dataclass
class Running:
    """A service started here: its process, ports and health check."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    ports: dict[int, int]  # container port -> local port
    health: list[str]
    cwd: Path
    env: dict[str, str]

    def healthy(self) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                self.health, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired:  # a slow check is a failed one, as Docker counts it
            return subprocess.CompletedProcess(self.health, 124, "", "timed out after 60 s")

    def url(self, port: int, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[port]}{path}"


def health_argv(service: dict[str, Any], image: LocalImage, dockerfile: Path) -> list[str]:
    """The service's health check (compose's, else its image's HEALTHCHECK) as an argv."""
    test = (service.get("healthcheck") or {}).get("test")
    if not test:
        healthcheck = stages(dockerfile)[-1].last("HEALTHCHECK")
        assert healthcheck is not None, "a server needs a health check, in compose or its image"
        test = list(healthcheck.value)
    kind, *argv = test
    return ["sh", "-c", argv[0]] if kind == "CMD-SHELL" else argv


@dataclass
class Command:
    """A service's command as it runs here: argv, environment, working directory, log."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    ports: dict[int, int]  # container port -> local port
    health: list[str]


def prepared(name: str, network: Network, image: LocalImage, workdir: Path) -> Command:
    """The service's command, environment and health check with every image path, volume,
    peer address and own port moved to this machine."""
    service = network.services[name]
    dockerfile = Path(service["build"]["context"]) / service["build"].get(
        "dockerfile", "Dockerfile"
    )
    own = {port: network.local_port(name, port) for port in network.listening(name)}
    paths = dict(image.paths)
    for volume in service.get("volumes") or []:
        local = Path(volume["source"]) if volume["type"] == "bind" else workdir / volume["source"]
        local.mkdir(parents=True, exist_ok=True)
        paths[volume["target"]] = local
    here = LocalImage(image.root, paths, image.workdir, image.env)

    def move(text: str) -> str:
        text = here.moved(network.moved(text.replace("$$", "$")))  # `$$`: a `$` for the container
        if text == "0.0.0.0":  # listen on this machine's loopback only
            return "127.0.0.1"
        if text.isdigit() and int(text) in own:
            return str(own[int(text)])
        # Its own address in a list (MLflow's --allowed-hosts) stays, and the local one joins.
        for port, local_port in own.items():
            if f"{name}:{port}" in text.split(","):
                text += f",127.0.0.1:{local_port}"
        return text

    command = service.get("command") or list(stages(dockerfile)[-1].last("CMD").value)
    command = [move(str(arg)) for arg in command]
    environment = {k: move(str(v)) for k, v in (service.get("environment") or {}).items()}
    disabled = (service.get("healthcheck") or {}).get("disable")
    health = [
        LOOPBACK.sub(
            lambda m: f"127.0.0.1:{own.get(int(m['port']), m['port'])}",
            here.moved(arg.replace("$$", "$")),
        )
        for arg in ([] if disabled else health_argv(service, image, dockerfile))
    ]
    home = workdir / "home" / name
    home.mkdir(parents=True, exist_ok=True)
    env = {**image.env, **environment, "HOME": str(home), "LANG": "C.UTF-8"}
    executable = shutil.which(command[0], path=env["PATH"])
    assert executable, f"{name}: `{command[0]}` is not in its image ({env['PATH']})"
    argv = [executable, *command[1:]]
    return Command(argv, env, image.workdir, workdir / f"{name}.log", own, health)


def completed(name: str, network: Network, image: LocalImage, workdir: Path) -> None:
    """Run a job (compose's `service_completed_successfully` dependency) to its end."""
    job = prepared(name, network, image, workdir)
    with job.log.open("wb") as output:
        result = subprocess.run(
            job.argv,
            cwd=job.cwd,
            env=job.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=STARTUP_SECONDS,
            check=False,
        )
    assert result.returncode == 0, f"{name} failed:\n{job.log.read_text()[-4000:]}"


@contextmanager
def started(name: str, network: Network, image: LocalImage, workdir: Path) -> Iterator[Running]:
    """Run the service here until the block ends, once its health check passes."""
    server = prepared(name, network, image, workdir)
    with server.log.open("wb") as output:
        process = subprocess.Popen(
            server.argv, cwd=server.cwd, env=server.env, stdout=output, stderr=subprocess.STDOUT
        )
    running = Running(
        name, process, server.log, server.ports, server.health, server.cwd, server.env
    )
    try:
        _wait_healthy(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(running: Running) -> None:
    deadline, check = time.monotonic() + STARTUP_SECONDS, None
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            pytest.fail(
                f"{running.name} exited ({running.process.returncode}):\n"
                f"{running.log.read_text()[-4000:]}"
            )
        check = running.healthy()
        if check.returncode == 0:
            return
        time.sleep(1)
    pytest.fail(
        f"{running.name} failed its health check {running.health} for {STARTUP_SECONDS} s "
        f"({check.stderr.strip() if check else ''}):\n{running.log.read_text()[-4000:]}"
    )


# --- the stack ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network(config: dict[str, Any], document_server: DocumentServer) -> Iterator[Network]:
    """A database of this test's own for each PostgreSQL database compose names, a MongoDB
    database, a Redis database number; all removed afterwards."""
    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError:
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
    services = copy.deepcopy(config["services"])  # MONGO_DB changes below, for this module only
    text = json.dumps(services)
    names = {
        m["path"].strip("/")
        for m in ADDRESS.finditer(text)
        if m["host"] in services and database(services[m["host"]]) == "postgres"
    }
    prefix = f"arxiv_test_{uuid.uuid4().hex[:8]}"
    databases = {name: f"{prefix}_{name}" for name in names}
    redis_url = f"{REDIS_URL.rsplit('/', 1)[0]}/{REDIS_DB}"
    cache = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    mongo_database = f"{prefix}_documents"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        for local in databases.values():
            conn.execute(f'CREATE DATABASE "{local}"')
    cache.flushdb()
    # MONGO_DB names the database inside the server: this test's own, not the stack's `arxiv`.
    for service in services.values():
        if "MONGO_DB" in (service.get("environment") or {}):
            service["environment"]["MONGO_DB"] = mongo_database
    try:
        yield Network(services, databases, document_server.url, redis_url)
    finally:
        cache.flushdb()
        cache.close()
        with pymongo.MongoClient(document_server.url, serverSelectionTimeoutMS=10_000) as mongo:
            mongo.drop_database(mongo_database)
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            for local in databases.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{local}" WITH (FORCE)')


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, network: Network, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Running]]:
    """Every server of the stack running here, started in dependency order."""
    workdir = tmp_path_factory.mktemp("stack")
    running: dict[str, Running] = {}
    with ExitStack() as stop:
        done: set[str] = set()

        def image_of(name: str) -> LocalImage:
            dockerfile = network.services[name]["build"].get("dockerfile", "Dockerfile")
            if dockerfile not in IMAGES:
                pytest.fail(f"{name}: say in IMAGES how to make {dockerfile}'s image here")
            return request.getfixturevalue(IMAGES[dockerfile])

        for name in servers(network.services):
            for job, needs in (network.services[name].get("depends_on") or {}).items():
                if needs["condition"] == "service_completed_successfully" and job not in done:
                    completed(job, network, image_of(job), workdir)
                    done.add(job)
            running[name] = stop.enter_context(started(name, network, image_of(name), workdir))
        yield running


def test_the_stack_has_the_expected_servers(network: Network) -> None:
    assert {"api", "app", "mlflow", "airflow-apiserver", "airflow-scheduler"} <= set(
        servers(network.services)
    )


def test_every_server_passes_its_own_health_check(stack: dict[str, Running]) -> None:
    for running in stack.values():
        check = running.healthy()
        assert check.returncode == 0, (running.name, running.health, check.stderr)


def test_every_server_answers_on_its_published_and_its_compose_address(
    stack: dict[str, Running], network: Network
) -> None:
    """A browser sends `Host: 127.0.0.1:<published port>`, a peer `Host: <name>:<port>`: a
    server that checks Host headers (MLflow's --allowed-hosts; its health check is exempt) must
    accept both, and still refuse others."""
    refused = (400, 403, 421)  # what servers answer to a Host they do not serve
    for name, running in stack.items():
        for published in network.services[name].get("ports") or []:
            port = int(published["target"])
            hosts = [f"{name}:{port}"] + [
                f"{host}:{published['published']}" for host in (published["host_ip"], "localhost")
            ]
            for host in hosts:
                answer = httpx.get(running.url(port, "/"), headers={"Host": host}, timeout=30)
                assert answer.status_code not in refused, (name, host, answer.text[:300])
    forged = httpx.get(stack["mlflow"].url(5000, "/"), headers={"Host": "mlflow.evil:5000"})
    assert forged.status_code == 403


def test_the_api_reaches_every_store_and_the_model_registry(stack: dict[str, Running]) -> None:
    """Its readiness probes the stores and the registry behind the MLflow server: all reachable,
    and no champion yet in a fresh registry (so the API is not ready to classify)."""
    api, mlflow = stack["api"], stack["mlflow"]
    answer = httpx.get(api.url(8500, "/health/ready"), timeout=60)

    assert answer.status_code == 503, answer.text
    checks = answer.json()["checks"]
    assert {name: check["ok"] for name, check in checks.items()} == {
        "papers": True,
        "documents": True,
        "cache": True,
        "model": False,
    }, checks
    assert checks["papers"]["detail"] == "0 papers"
    assert checks["cache"]["detail"] == "Redis reachable"
    assert f"127.0.0.1:{mlflow.ports[5000]}" in checks["model"]["detail"]


def test_the_ui_serves_its_page_and_reaches_the_api(stack: dict[str, Running]) -> None:
    app = stack["app"]
    page = httpx.get(app.url(8501, "/"), timeout=30)

    assert page.status_code == 200 and "<title>Streamlit</title>" in page.text
    api_url = app.env["API_URL"]
    assert api_url == stack["api"].url(8500)
    assert httpx.get(f"{api_url}/health", timeout=30).status_code == 200
