"""partial indexes: running timers, the outbox, unanswered urgent notifications

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 17:40:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING = "fired_at IS NULL AND stopped_at IS NULL"
OUTBOX = "published_at IS NULL AND withdrawn_at IS NULL"
URGENT_OPEN = "priority = 'urgent' AND acknowledged_at IS NULL AND withdrawn_at IS NULL"


def _where(condition: str) -> dict[str, Any]:  # dialect options: create_index takes them as **kw: Any
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.create_index("ix_timers_running", "timers", ["due_at", "kind"], **_where(RUNNING))
    op.create_index("ix_notifications_outbox", "notifications", ["created_at"], **_where(OUTBOX))
    op.create_index("ix_notifications_urgent_open", "notifications", ["created_at"], **_where(URGENT_OPEN))


def downgrade() -> None:
    op.drop_index("ix_notifications_urgent_open", table_name="notifications")
    op.drop_index("ix_notifications_outbox", table_name="notifications")
    op.drop_index("ix_timers_running", table_name="timers")
