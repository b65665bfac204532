"""outbound records for other agencies, licence condition requests, and the case state they need

Revision ID: 0014
Revises: 0013

A case's parole review is taken as not open: the store did not track it before, and the next ParoleReviewStarted
opens it. No scheme flag was ever published, so every case starts with none (NULL), and the first change that
puts a victim in the scheme publishes one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.store.models import UtcDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTSTANDING = "outcome IS NULL"
UNPUBLISHED = "published_at IS NULL AND payload IS NOT NULL"
PAYLOAD_KEPT = "payload IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(
            sa.Column("parole_review_open", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )
        batch.add_column(sa.Column("in_scheme_published", sa.Boolean(), nullable=True))
    op.create_table(
        "licence_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("person_ref", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(48), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.LargeBinary, nullable=True),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("requested_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason", sa.LargeBinary, nullable=True),
        sa.Column("decided_by_event_id", sa.String(36), nullable=True),
        sa.Column("decided_at", UtcDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_licence_requests_case_id", "licence_requests", ["case_id"])
    op.create_index(
        "ix_licence_requests_outstanding",
        "licence_requests",
        ["case_id"],
        sqlite_where=sa.text(OUTSTANDING),
        postgresql_where=sa.text(OUTSTANDING),
    )
    op.create_table(
        "outbound_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=True),
        sa.Column("record_type", sa.String(64), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=True),
        sa.Column("person_ref", sa.String(64), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("published_at", UtcDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_outbound_records_case_id", "outbound_records", ["case_id"])
    op.create_index(
        "ix_outbound_records_outbox",
        "outbound_records",
        ["created_at"],
        sqlite_where=sa.text(UNPUBLISHED),
        postgresql_where=sa.text(UNPUBLISHED),
    )
    op.create_index(
        "ix_outbound_records_payload_kept",
        "outbound_records",
        ["published_at"],
        sqlite_where=sa.text(PAYLOAD_KEPT),
        postgresql_where=sa.text(PAYLOAD_KEPT),
    )


def downgrade() -> None:
    op.drop_index("ix_outbound_records_payload_kept", table_name="outbound_records")
    op.drop_index("ix_outbound_records_outbox", table_name="outbound_records")
    op.drop_index("ix_outbound_records_case_id", table_name="outbound_records")
    op.drop_table("outbound_records")
    op.drop_index("ix_licence_requests_outstanding", table_name="licence_requests")
    op.drop_index("ix_licence_requests_case_id", table_name="licence_requests")
    op.drop_table("licence_requests")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("in_scheme_published")
        batch.drop_column("parole_review_open")
