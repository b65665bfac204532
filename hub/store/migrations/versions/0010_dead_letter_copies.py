"""dead-letter copies, so a broker that loses its topics can be given the dead-letter list back

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 14:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.store.models import UtcDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letter_copies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.Integer, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=True),
        sa.Column("value", sa.LargeBinary, nullable=True),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("written_at", UtcDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("partition", "offset"),
    )


def downgrade() -> None:
    op.drop_table("dead_letter_copies")
