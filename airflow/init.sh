#!/usr/bin/env bash
# The compose stack's `airflow-init` (docker-compose.yaml): the metadata database, its schema,
# the admin user and the pools, before any other Airflow service starts. Safe to run again.
set -euo pipefail

# deploy/postgres-init.sql creates Airflow's database with a new PostgreSQL volume; a volume made
# before Airflow joined the stack gets it here (its name: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN's).
"$ARXIV_KEDRO_PYTHON" - <<'EOF'
import os

import psycopg
from sqlalchemy.engine import make_url

name = make_url(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).database
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
        print(f"Created the PostgreSQL database {name}")
EOF

airflow db migrate

# The admin user from .env; its password follows .env on every start.
airflow users create --role Admin --username "$AIRFLOW_ADMIN_USER" \
  --password "$AIRFLOW_ADMIN_PASSWORD" --firstname Admin --lastname arxiv-kedro \
  --email "${AIRFLOW_ADMIN_EMAIL:-admin@localhost}" \
  || airflow users reset-password --username "$AIRFLOW_ADMIN_USER" \
    --password "$AIRFLOW_ADMIN_PASSWORD"

# Pool sizes from conf/*/airflow.yml, written by `make dags`.
airflow pools import "$ARXIV_KEDRO_PROJECT/airflow/pools.json"
