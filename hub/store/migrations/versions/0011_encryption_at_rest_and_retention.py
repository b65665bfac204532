"""victims' personal fields and stored payloads encrypted at rest; when a case closed and a victim was anonymised

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:00:00

Values already stored stay readable as they are (a value without the encryption prefix is read in clear) until
`hub keys rotate-data` encrypts them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.store.models import UtcDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (column, its type before, whether it was NOT NULL)
VICTIM_FIELDS = [
    ("name", sa.String(200), True),
    ("postcode", sa.String(16), True),
    ("language", sa.String(16), False),
    ("preferred_channel", sa.String(16), False),
    ("accessibility_needs", sa.Text(), False),
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("victims") as batch:
        for column, before, _ in VICTIM_FIELDS:
            batch.alter_column(
                column,
                existing_type=before,
                type_=sa.LargeBinary(),
                nullable=True,
                postgresql_using=f"convert_to({column}, 'UTF8')" if postgres else None,
            )
        batch.add_column(sa.Column("anonymised_at", UtcDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("anonymised_reason", sa.String(16), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("payload", existing_type=sa.LargeBinary(), nullable=True)
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("closed_at", UtcDateTime(timezone=True), nullable=True))
        batch.create_index("ix_cases_closed_at", ["closed_at"])
    with op.batch_alter_table("processed_events") as batch:
        batch.create_index("ix_processed_events_processed_at", ["processed_at"])


def downgrade() -> None:
    with op.batch_alter_table("processed_events") as batch:
        batch.drop_index("ix_processed_events_processed_at")
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_closed_at")
        batch.drop_column("closed_at")
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("payload", existing_type=sa.LargeBinary(), nullable=False)
    with op.batch_alter_table("victims") as batch:
        batch.drop_column("anonymised_reason")
        batch.drop_column("anonymised_at")
        for column, before, required in VICTIM_FIELDS:
            batch.alter_column(column, existing_type=sa.LargeBinary(), type_=before, nullable=not required)
