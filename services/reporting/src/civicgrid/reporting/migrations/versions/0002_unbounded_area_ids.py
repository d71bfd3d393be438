"""area ids unbounded: the event contract does not bound a jurisdiction's ids

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("community_id", "grid_id", "micro_grid_id")


def upgrade() -> None:
    with op.batch_alter_table("incident_facts") as batch_op:
        for column in COLUMNS:
            batch_op.alter_column(
                column, type_=sa.String(), existing_type=sa.String(length=128), nullable=True
            )


def downgrade() -> None:
    with op.batch_alter_table("incident_facts") as batch_op:
        for column in COLUMNS:
            batch_op.alter_column(
                column, type_=sa.String(length=128), existing_type=sa.String(), nullable=True
            )
