"""retention: parked events keep their record's key and headers; an index of the notification payloads still kept

Revision ID: 0013
Revises: 0012

A case closed before cases.closed_at existed gets the moment of this migration as its closing time: its victims'
data is then kept the full period from now, never removed early on a guess.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from hub.store.models import UtcDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAYLOAD_KEPT = "payload IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("parked_events") as batch:
        batch.add_column(sa.Column("key", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("headers", sa.JSON(), nullable=True))
    op.create_index(
        "ix_notifications_payload_kept",
        "notifications",
        ["published_at", "withdrawn_at"],
        sqlite_where=sa.text(PAYLOAD_KEPT),
        postgresql_where=sa.text(PAYLOAD_KEPT),
    )
    cases = sa.table("cases", sa.column("status", sa.String), sa.column("closed_at", UtcDateTime()))
    op.execute(
        cases.update()
        .where(cases.c.status == "closed", cases.c.closed_at.is_(None))
        .values(closed_at=datetime.now(UTC))
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_payload_kept", table_name="notifications")
    with op.batch_alter_table("parked_events") as batch:
        batch.drop_column("headers")
        batch.drop_column("key")
