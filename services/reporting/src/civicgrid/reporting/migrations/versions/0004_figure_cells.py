"""figure_cells: the additive figures per (local day, community), kept by the projection;
covering index for "overdue now"

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from civicgrid.reporting.figures import rebuild_cells
from civicgrid.reporting.schema import CELL_FIGURES

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


OVERDUE_COLUMNS = [
    "closed_at",
    "resolved_at",
    "resolve_on_time",
    "resolve_due_at",
    "reported_at",
    "reported_day",
    "community_id",
]


def upgrade() -> None:
    # Covers the overdue count per community, day or city (and serves the overdue list, as
    # the index it replaces did): the open rows, read from the index alone.
    op.drop_index("ix_incident_facts_open", table_name="incident_facts")
    op.create_index("ix_incident_facts_overdue", "incident_facts", OVERDUE_COLUMNS)
    op.create_index(
        "ix_incident_facts_day_community", "incident_facts", ["reported_day", "community_id"]
    )
    op.create_table(
        "figure_cells",
        sa.Column("reported_day", sa.String(length=10), nullable=False),
        sa.Column("community_key", sa.String(), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            for name in CELL_FIGURES
        ),
        sa.PrimaryKeyConstraint("reported_day", "community_key"),
    )
    # A model from before this version: its cells from its facts, once. (This uses today's
    # definitions: a later change to a figure's definition recounts them in its own migration.)
    rebuild_cells(op.get_bind())


def downgrade() -> None:
    op.drop_table("figure_cells")
    op.drop_index("ix_incident_facts_day_community", table_name="incident_facts")
    op.drop_index("ix_incident_facts_overdue", table_name="incident_facts")
    op.create_index("ix_incident_facts_open", "incident_facts", ["closed_at", "resolve_due_at"])
