"""Requested licence conditions reconciled against a decision (docs/domain.md section 8.2).

A victim, through their VLO, asks for conditions (`LicenceConditionsRequested`). When a decision that sets
conditions arrives, each request still outstanding is `set` (a condition of the decision matches it), `omitted`
(the decision lists it among the omitted requests, with a reason) or `not_addressed`, which the VLO must chase.
Pure: the caller gives the requests and the decision's conditions, and keeps the outcomes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from routing.content import NotificationContent, RequestOutcome


class Outcome(StrEnum):
    SET = "set"
    OMITTED = "omitted"
    NOT_ADDRESSED = "not_addressed"


@dataclass(frozen=True)
class Request:
    """One condition a victim asked for, as the store keeps it."""

    request_id: str  # the request event's id and the condition's index: "<event id>:<n>"
    text: str
    code: str | None = None


@dataclass(frozen=True)
class SetCondition:
    """A condition the decision imposed (or varied), as the deciding body wrote it."""

    text: str
    code: str | None = None


@dataclass(frozen=True)
class Omission:
    """A requested condition the decision did not impose, and why."""

    text: str
    reason: str


@dataclass(frozen=True)
class Decided:
    """What a decision says about conditions: those it sets, and the requests it omits."""

    conditions: tuple[SetCondition, ...]
    omitted: tuple[Omission, ...]


@dataclass(frozen=True)
class Reconciled:
    request: Request
    outcome: Outcome
    reason: str | None = None  # the decision's reason, for an omitted request


_PUNCTUATION = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def normalised(text: str) -> str:
    """Text compared the way people read it: case, punctuation and spacing ignored."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", folded)).strip()


def _same_code(a: str | None, b: str | None) -> bool | None:
    """Whether two codes agree; None when either is missing (then the texts decide)."""
    if not a or not b:
        return None
    return a.strip().casefold() == b.strip().casefold()


def _is_set(request: Request, conditions: Sequence[SetCondition]) -> bool:
    wanted = normalised(request.text)
    for condition in conditions:
        by_code = _same_code(request.code, condition.code)
        if by_code if by_code is not None else normalised(condition.text) == wanted:
            return True
    return False


def reconcile(requests: Iterable[Request], decided: Decided) -> list[Reconciled]:
    """Each request's outcome under the decision, in the order given. A condition set wins over an omission of
    the same text; an omission with a blank reason does not count as one (the request was dropped unexplained)."""
    omissions = {normalised(o.text): o.reason.strip() for o in decided.omitted if o.reason.strip()}
    result = []
    for request in requests:
        if _is_set(request, decided.conditions):
            result.append(Reconciled(request, Outcome.SET))
        elif (reason := omissions.get(normalised(request.text))) is not None:
            result.append(Reconciled(request, Outcome.OMITTED, reason))
        else:
            result.append(Reconciled(request, Outcome.NOT_ADDRESSED))
    return result


# Which outcomes of these decisions set conditions; any other outcome leaves the requests outstanding (a refusal
# to release sets no licence, so nothing in it could address a request).
_DECIDING_OUTCOMES: dict[str, frozenset[str] | None] = {
    "LicenceConditionsSet": None,  # None: every outcome (these events have none)
    "LicenceVaried": None,
    "ParoleDecisionIssued": frozenset({"release"}),
    "TribunalDecisionIssued": frozenset(
        {"conditional_discharge", "deferred_conditional_discharge", "absolute_discharge"}
    ),
}


def _set(conditions: Iterable[Any]) -> tuple[SetCondition, ...]:
    return tuple(SetCondition(c.text, c.code) for c in conditions)


def decided_by(event_type: str, event: Any) -> Decided | None:
    """What a decision event sets and omits; None when the event decides no conditions (not a decision event,
    or an outcome that sets no licence)."""
    if event_type not in _DECIDING_OUTCOMES:
        return None
    outcomes = _DECIDING_OUTCOMES[event_type]
    if outcomes is not None and event.outcome not in outcomes:
        return None
    if event_type == "LicenceVaried":
        conditions = _set([*event.added, *event.varied])
    elif event_type == "ParoleDecisionIssued":
        conditions = _set(event.licence_conditions)
    else:
        conditions = _set(event.conditions)
    omitted = tuple(
        Omission(o.text, o.reason) for o in getattr(event, "omitted_requested_conditions", None) or ()
    )
    return Decided(conditions, omitted)


def outcomes_for(reconciled: Iterable[Reconciled]) -> tuple[RequestOutcome, ...]:
    """The outcomes as a notification lists them."""
    return tuple(RequestOutcome(r.request.text, r.outcome.value, r.reason) for r in reconciled)


def with_outcomes(said: NotificationContent, outcomes: tuple[RequestOutcome, ...]) -> NotificationContent:
    """A decision's notification for one victim: what it says, and what became of each of their requests."""
    if not outcomes:
        return said
    unaddressed = sum(1 for o in outcomes if o.outcome == Outcome.NOT_ADDRESSED)
    summary = f"{said.summary} {len(outcomes)} requested condition(s) reconciled"
    summary += f"; {unaddressed} not addressed." if unaddressed else "."
    return replace(said, summary=summary, request_outcomes=outcomes)


_DECISION_WORDS = {
    "LicenceConditionsSet": "licence",
    "LicenceVaried": "licence variation",
    "ParoleDecisionIssued": "Parole Board's",
    "TribunalDecisionIssued": "tribunal's",
}


def unaddressed_escalation(texts: Sequence[str], event_type: str) -> NotificationContent:
    """What the VLO is told when a decision left requests unaddressed: each request, as the VLO wrote it."""
    listed = "; ".join(f'"{text}"' for text in texts)
    decision = _DECISION_WORDS.get(event_type, event_type)
    return NotificationContent(
        f"The {decision} decision neither set nor gave a reason for omitting {len(texts)} condition(s) the "
        f"victim asked for: {listed}. Ask the decision-maker to consider them.",
        {f"not_addressed_{i + 1}": text for i, text in enumerate(texts)},
        request_outcomes=tuple(RequestOutcome(text, Outcome.NOT_ADDRESSED.value, None) for text in texts),
    )
