"""deploy/postgres/10-hub-role.sh on this machine's real PostgreSQL: the role it makes can run the hub's
migrations in its own database, and can do nothing a superuser could."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from hub.store.engine import make_engine
from tests.integration.conftest import POSTGRES_ADMIN_URL, ROOT

SCRIPT = ROOT / "deploy" / "postgres" / "10-hub-role.sh"


def test_the_hub_role_migrates_its_own_database_and_nothing_more(tmp_path: Path) -> None:
    if shutil.which("psql") is None:
        if os.environ.get("CI"):
            raise AssertionError("psql is needed in CI to check the compose stack's database role")
        pytest.skip("psql is not installed")
    name = f"hub_role_{uuid.uuid4().hex[:8]}"  # roles are cluster-wide: never touch a real `hub`
    script = tmp_path / "role.sh"
    script.write_text(re.sub(r"\bhub\b", name, SCRIPT.read_text()))
    env = {
        **os.environ,
        "POSTGRES_USER": "postgres",
        "ROLE_PASSWORD_HUB": "pw1234",
        "PGHOST": "127.0.0.1",
    }
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        made = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        url = POSTGRES_ADMIN_URL.replace("postgres@", f"{name}:pw1234@").rsplit("/", 1)[0] + f"/{name}"
        engine = make_engine(url)  # the hub's migrations, as the hub's role
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            assert connection.execute(text("SELECT count(*) FROM cases")).scalar() == 0
            for statement in (
                f"CREATE ROLE {name}_x",
                f"CREATE DATABASE {name}_x",
                "SELECT * FROM pg_authid",
            ):
                with pytest.raises(ProgrammingError, match="permission denied"):
                    connection.execute(text(statement))
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()
