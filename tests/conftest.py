"""The order in which the two xdist processes take the test files.

`--dist loadfile` keeps each file on one process, and `--no-loadscope-reorder` (pyproject.toml) hands the files
out in the order collected here. A process takes the next file when it is almost done with its last, so the
files that take longest go first and the many short unit-test files fill in at the end: otherwise a file of
one or two long tests (a worker killed, thirty seconds without the database, a browser) taken last keeps one
process busy for minutes while the other has nothing left to do.

Only the order of whole files changes: a file's own tests keep their order (and their module-scoped fixtures,
each set up once), and every test runs exactly as it would alone.
"""

from __future__ import annotations

import pytest

# Longest first, as measured on the CI machine (whole file: set-up, tests and tear-down). A file not listed
# comes after these; unit tests come last. A wrong guess here costs balance, never a test.
LONGEST_FIRST = [
    "tests/scenarios/test_scenarios.py",
    "tests/integration/test_security.py",
    "tests/integration/test_cli.py",
    "tests/integration/test_dead_letters.py",
    "tests/integration/test_fuzz.py",
    "tests/integration/test_walking_skeleton.py",
    "tests/integration/test_console_sign_in.py",
    "tests/faults/test_worker_killed.py",
    "tests/integration/test_bad_input.py",
    "tests/faults/test_database_outage.py",
    "tests/integration/test_two_workers.py",
    "tests/integration/test_bench_workers.py",
    "tests/browser/test_console.py",
    "tests/faults/test_retry_and_delivery.py",
    "tests/integration/test_backlog_order.py",
    "tests/integration/test_simulate.py",
    "tests/faults/test_urgent_during_backlog.py",
]


def _file_rank(nodeid: str) -> tuple[int, int]:
    path = nodeid.split("::", 1)[0]
    if path in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(path))
    return (2, 0) if path.startswith("tests/unit/") else (1, 0)


@pytest.hookimpl(trylast=True)  # after pytest's own ordering by fixture parameters, which stays within a file
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # not an xdist process: collection order, as usual
        return
    items.sort(key=lambda item: _file_rank(item.nodeid))  # stable: files stay whole and in their own order
