"""console sign-outs and failed sign-ins, shared by every worker and kept across restarts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 14:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.store.models import UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_sign_outs",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("until", UtcDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_console_sign_outs_until", "console_sign_outs", ["until"])
    op.create_table(
        "console_failed_sign_ins",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_console_failed_sign_ins_username", "console_failed_sign_ins", ["username"])
    op.create_index("ix_console_failed_sign_ins_at", "console_failed_sign_ins", ["at"])


def downgrade() -> None:
    op.drop_table("console_failed_sign_ins")
    op.drop_table("console_sign_outs")
