"""Every scenario file in this folder, end to end on the real broker, once on SQLite and once on PostgreSQL.

A scenario passes when its unit queues hold each expected notification exactly once (matched on the fields
the file lists) and no other notification for its case references, and when none of its notifications
carries a value the file or its events mark as never to be shown. A scenario that lists `expect_outbound` is
judged the same way on the records the hub wrote for other agencies about its cases; no outbound record of any
scenario may carry a victim's name, reference, postcode or contact details. A scenario that states what docs/domain.md
requires and the hub does not do yet is marked `xfail: "BUG: ..."` in its file (strict: it must fail).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.scenarios.conftest import (
    RunResult,
    Scenario,
    describe,
    matches,
    matches_outbound,
    read_scenario_file,
    scenario_files,
)

# The first test of a database waits for that database's run, and the runs take turns to publish (conftest.py,
# Turns): on a loaded machine SQLite's run can end after PostgreSQL has published too, past the usual 300 s.
pytestmark = pytest.mark.timeout(600)

# Identifiers the runner makes up; everything else in a notification is what a VLO reads.
IDENTIFIER_FIELDS = ("notification_id", "case_ref", "person_ref", "source_event_ids", "created_at", "vlo_id")


def _params() -> list[Any]:
    params = []
    for path in scenario_files():
        reason = read_scenario_file(path).get("xfail")
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(path.stem, marks=marks, id=path.stem))
    return params


def readable_text(notification: dict[str, Any]) -> str:
    return json.dumps(
        {k: v for k, v in notification.items() if k not in IDENTIFIER_FIELDS}, ensure_ascii=False
    )


def leaks(notification: dict[str, Any], forbidden: set[str]) -> list[str]:
    text = readable_text(notification)
    return sorted(value for value in forbidden if value in text)


def problems_of(scenario: Scenario, found: list[dict[str, Any]]) -> list[str]:
    problems = []
    used: set[int] = set()
    for expected in scenario.expect:
        hits = [i for i, n in enumerate(found) if matches(expected, n)]
        if len(hits) != 1:
            problems.append(f"expected once, found {len(hits)} time(s): {expected}")
        used.update(hits)
    for i, notification in enumerate(found):
        if i not in used:
            problems.append(f"unexpected notification: {describe(notification)}")
    forbidden = scenario.sensitive | set(scenario.forbid_text)
    for notification in found:
        if bad := leaks(notification, forbidden):
            problems.append(f"{describe(notification)} carries {bad}")
        others = {name for ref, name in scenario.victims.items() if ref != notification.get("person_ref")}
        if bad := leaks(notification, others):
            problems.append(f"{describe(notification)} names another victim: {bad}")
    return problems


def victim_data(scenario: Scenario) -> set[str]:
    """What an outbound record must never carry: the victims' names and references, and every protected value of
    the scenario's events (postcodes, address lines, phone numbers, emails, ...)."""
    return set(scenario.victims) | set(scenario.victims.values()) | scenario.sensitive


def outbound_problems(scenario: Scenario, found: list[dict[str, Any]]) -> list[str]:
    problems = []
    if scenario.expect_outbound:
        used: set[int] = set()
        for expected in scenario.expect_outbound:
            hits = [i for i, r in enumerate(found) if matches_outbound(expected, r)]
            if len(hits) != 1:
                problems.append(f"expected on an outbound topic once, found {len(hits)} time(s): {expected}")
            used.update(hits)
        problems += [f"unexpected outbound record: {r}" for i, r in enumerate(found) if i not in used]
    forbidden = victim_data(scenario) | set(scenario.forbid_text)
    for record in found:
        if bad := sorted(v for v in forbidden if v in json.dumps(record, ensure_ascii=False)):
            problems.append(f"outbound record {record['record_type']} to {record['agency']} carries {bad}")
    return problems


@pytest.mark.parametrize("name", _params())
def test_scenario(scenario_run: RunResult, name: str) -> None:
    scenario = scenario_run.scenarios[name]
    errors = scenario_run.errors.get(name, [])
    assert not errors, f"{scenario.title}\npublishing failed:\n" + "\n".join(errors)
    found = scenario_run.notifications[name]
    outbound = scenario_run.outbound[name]
    problems = problems_of(scenario, found) + outbound_problems(scenario, outbound)
    assert not problems, (
        f"{scenario.title} ({scenario_run.database})\n"
        + "\n".join(problems)
        + "\nall notifications of the scenario:\n"
        + "\n".join(describe(n) for n in found)
        + "\nall its outbound records:\n"
        + "\n".join(json.dumps(r, ensure_ascii=False) for r in outbound)
    )


def test_no_notification_carries_protected_data(scenario_run: RunResult) -> None:
    """Issue 4 item 7: no postcode, address line, phone, email or date of birth from any event, no prison or
    hospital code or name, no release or curfew address and no clinical field value, in any notification."""
    forbidden: set[str] = set()
    for scenario in scenario_run.scenarios.values():
        forbidden |= scenario.sensitive
    assert forbidden, "the scenarios carry no protected values to look for"
    assert scenario_run.all_notifications, "the scenarios produced no notifications"
    problems = [
        f"{describe(n)} carries {bad}" for n in scenario_run.all_notifications if (bad := leaks(n, forbidden))
    ]
    assert not problems, "\n".join(problems)


def test_no_outbound_record_carries_victim_data(scenario_run: RunResult) -> None:
    """Issue 23 item 3: every record on the outbound topics, scanned for any scenario's victim names, person refs,
    postcodes and contact details (and the other protected values of their events); the scheme flags name the
    unit to contact."""
    forbidden: set[str] = set()
    for scenario in scenario_run.scenarios.values():
        forbidden |= victim_data(scenario)
    flags = [r for r in scenario_run.all_outbound if r["record_type"] == "SchemeFlagChanged"]
    assert any(r["in_scheme"] and r["unit_code"] and r["unit_name"] for r in flags), "no scheme flag was read"
    assert {r["agency"] for r in flags} == {"prison", "probation"}
    problems = []
    for record in scenario_run.all_outbound:
        text = json.dumps(record, ensure_ascii=False)
        if bad := sorted(value for value in forbidden if value in text):
            problems.append(f"{record['record_type']} to {record['agency']} carries {bad}")
    assert not problems, "\n".join(problems)
