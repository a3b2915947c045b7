"""One row per monitoring run: its windows, key figures and verdict (the time series the API
and the UI's Health page plot).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_version", sa.String(length=32)),
        sa.Column("current_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_papers", sa.Integer(), nullable=False),
        sa.Column("reference_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reference_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reference_papers", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float()),
        sa.Column("macro_f1", sa.Float()),
        sa.Column("champion_macro_f1", sa.Float()),
        sa.Column("drift_detected", sa.Boolean(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=False),
        sa.Column("text_drift", sa.Boolean(), nullable=False),
        sa.Column("feed_alarms", sa.Integer(), nullable=False),
        sa.Column("checks_failed", sa.Integer(), nullable=False),
        sa.Column("retrain_recommended", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_monitoring_runs")),
    )
    op.create_index(op.f("ix_monitoring_runs_run_at"), "monitoring_runs", ["run_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_monitoring_runs_run_at"), table_name="monitoring_runs")
    op.drop_table("monitoring_runs")
