"""each clock's duration as the policy wrote it ("30m", "5wd"): working-day aware durations

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CLOCKS = ("accept", "arrive", "resolve")


def upgrade() -> None:
    # Rows projected before this version keep None (counted in calendar time) until a rebuild.
    with op.batch_alter_table("incident_facts") as batch_op:
        for clock in CLOCKS:
            batch_op.add_column(sa.Column(f"{clock}_duration", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incident_facts") as batch_op:
        for clock in CLOCKS:
            batch_op.drop_column(f"{clock}_duration")
