"""Fault tests run on the same real parts as the integration tests."""

from tests.integration.conftest import broker, database_url  # noqa: F401  (fixtures)
