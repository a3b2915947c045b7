-- Runs once, when the postgres volume is created: MLflow keeps its tracking and registry
-- tables (and its own alembic_version) in a database of their own.
CREATE DATABASE mlflow OWNER arxiv;
-- Airflow's metadata (airflow/init.sh creates it too when the volume predates Airflow).
CREATE DATABASE airflow OWNER arxiv;
