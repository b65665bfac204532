"""retry copies, so a broker that loses its topics can be given the retry ladder back

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.store.models import UtcDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retry_copies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.Integer, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=True),
        sa.Column("value", sa.LargeBinary, nullable=True),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("written_at", UtcDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("topic", "partition", "offset"),
    )
    op.create_index("ix_retry_copies_written_at", "retry_copies", ["written_at"])


def downgrade() -> None:
    op.drop_index("ix_retry_copies_written_at", "retry_copies")
    op.drop_table("retry_copies")
