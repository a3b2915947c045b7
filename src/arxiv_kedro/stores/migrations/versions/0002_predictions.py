"""Classifier predictions, one row per paper and registered model.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("paper_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("content_hash", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("label_2", sa.String(length=64), nullable=False),
        sa.Column("probability_2", sa.Float(), nullable=False),
        sa.Column("label_3", sa.String(length=64), nullable=False),
        sa.Column("probability_3", sa.Float(), nullable=False),
        sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("paper_id", "model_name", name=op.f("pk_predictions")),
    )
    op.create_index(op.f("ix_predictions_label"), "predictions", ["label"])


def downgrade() -> None:
    op.drop_index(op.f("ix_predictions_label"), table_name="predictions")
    op.drop_table("predictions")
