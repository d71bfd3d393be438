"""incident facts and projection checkpoints

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_facts",
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_day", sa.String(length=10), nullable=True),
        sa.Column("channel", sa.String(length=128), nullable=True),
        sa.Column("matter", sa.String(length=128), nullable=True),
        sa.Column("matter_group", sa.String(length=128), nullable=True),
        sa.Column("community_id", sa.String(length=128), nullable=True),
        sa.Column("grid_id", sa.String(length=128), nullable=True),
        sa.Column("micro_grid_id", sa.String(length=128), nullable=True),
        sa.Column("level", sa.String(length=32), nullable=True),
        sa.Column("reached_department", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("lead_unit_id", sa.String(length=128), nullable=True),
        sa.Column("lead_unit_kind", sa.String(length=32), nullable=True),
        sa.Column("assignments", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_level", sa.String(length=32), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merged_into", sa.String(length=64), nullable=True),
        sa.Column("returns", sa.Integer(), server_default="0", nullable=False),
        sa.Column("returns_wrong_jurisdiction", sa.Integer(), server_default="0", nullable=False),
        sa.Column("returns_not_our_duty", sa.Integer(), server_default="0", nullable=False),
        sa.Column("returns_unclear_ownership", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "returns_insufficient_information", sa.Integer(), server_default="0", nullable=False
        ),
        sa.Column("returns_other", sa.Integer(), server_default="0", nullable=False),
        sa.Column("merges", sa.Integer(), server_default="0", nullable=False),
        sa.Column("suspensions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("suspended", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("extensions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reopens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("accept_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accept_on_time", sa.Boolean(), nullable=True),
        sa.Column("accept_clock_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("arrive_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrive_on_time", sa.Boolean(), nullable=True),
        sa.Column("arrive_clock_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resolve_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolve_on_time", sa.Boolean(), nullable=True),
        sa.Column("resolve_clock_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("warnings", sa.Integer(), server_default="0", nullable=False),
        sa.Column("breaches", sa.Integer(), server_default="0", nullable=False),
        sa.Column("escalations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("callbacks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("satisfied", sa.Boolean(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    with op.batch_alter_table("incident_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incident_facts_community", ["community_id", "reported_at"], unique=False
        )
        batch_op.create_index(
            "ix_incident_facts_open", ["closed_at", "resolve_due_at"], unique=False
        )
        batch_op.create_index("ix_incident_facts_reported_at", ["reported_at"], unique=False)

    op.create_table(
        "projection_checkpoints",
        sa.Column("projection", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("projection"),
    )


def downgrade() -> None:
    op.drop_table("projection_checkpoints")
    with op.batch_alter_table("incident_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_facts_reported_at")
        batch_op.drop_index("ix_incident_facts_open")
        batch_op.drop_index("ix_incident_facts_community")

    op.drop_table("incident_facts")
