"""`Traffic`: the endless stream itself, made of every agency's events, with new cases opened now and then,
follow-ups in the proportions of `mix`, and, when asked, a share of invalid events."""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterator

from hub.tools.traffic.cases import SimulatedCase
from hub.tools.traffic.courts import CourtEvents
from hub.tools.traffic.custody import CustodyEvents
from hub.tools.traffic.identifiers import CASE_NUMBERS
from hub.tools.traffic.invalid import BREAKERS
from hub.tools.traffic.making import SimulatedEvent
from hub.tools.traffic.mix import FOLLOW_UP_CUMULATIVE, FOLLOW_UP_TYPES, NEW_CASE_CHANCE
from hub.tools.traffic.opening import OpeningEvents
from hub.tools.traffic.supervision import SupervisionEvents
from hub.tools.traffic.victims import VictimEvents


class Traffic(OpeningEvents, CustodyEvents, SupervisionEvents, CourtEvents, VictimEvents):
    """An endless, realistic stream of agency events; the same seed gives the same events (ids aside)."""

    def follow_up(self, number: int) -> SimulatedEvent:
        """One later event about an existing case `number` from any source, in realistic proportions
        (prison transfers/ROTL/release dates/releases, probation licence/recall, parole board, youth, hospital,
        home office...), valid for that case."""
        return self._follow_up(number, remember=True)

    def __iter__(self) -> Iterator[SimulatedEvent]:
        """An endless realistic stream: new cases opened now and then, follow-ups about cases already opened,
        and, with invalid_share > 0, that share of invalid events (wrong identifier format, a date in the future,
        a missing field) so operators see dead letters."""
        rng = self._rng
        while True:
            if self._opened == 0 or rng.random() < NEW_CASE_CHANCE:
                number = (self.first_case + self._opened) % CASE_NUMBERS
                self._opened += 1
                events = self.opening_events(number)
            else:
                events = [self.follow_up(self._known_case())]
            for event in events:
                # Each place in the stream is invalid with probability invalid_share, so that share of the
                # stream is invalid; the valid event waits behind it rather than being lost.
                while self.invalid_share and rng.random() < self.invalid_share:
                    yield self._invalid()
                yield event

    def _follow_up(self, number: int, remember: bool) -> SimulatedEvent:
        case = self._case(number)
        rng = self._rng
        index = bisect.bisect_right(FOLLOW_UP_CUMULATIVE, rng.random() * FOLLOW_UP_CUMULATIVE[-1])
        event_type = FOLLOW_UP_TYPES[min(index, len(FOLLOW_UP_TYPES) - 1)]
        if event_type == "PrisonerReleaseCancelled" and number not in self._releases:
            event_type = "PrisonerReleased"  # nothing to cancel yet: the release comes first
        event = _BUILDERS[event_type](self, case, rng)
        if remember and event_type == "PrisonerReleased":
            self._releases[number] = event.fields["event_id"]
        elif remember and event_type == "PrisonerReleaseCancelled":
            self._releases.pop(number, None)
        return event

    # ---- invalid events
    def _invalid(self) -> SimulatedEvent:
        """A follow-up broken the way agency systems break: a malformed identifier, a date in the future, or a
        missing required identifier. It changes no state of the stream (it will be dead-lettered)."""
        rng = self._rng
        number = self._known_case() if self._opened else self.first_case
        while True:
            event = self._follow_up(number, remember=False)
            fields = dict(event.fields)
            fields.pop("event_id", None)  # a broken copy must not take a real release's id
            broken = BREAKERS[rng.randrange(len(BREAKERS))](self, fields)
            if broken:
                return SimulatedEvent(event.source, fields, event.urgent)


def _builder(event_type: str) -> Callable[[Traffic, SimulatedCase, random.Random], SimulatedEvent]:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in event_type)
    builder: Callable[[Traffic, SimulatedCase, random.Random], SimulatedEvent] = getattr(Traffic, snake)
    return builder


_BUILDERS: dict[str, Callable[[Traffic, SimulatedCase, random.Random], SimulatedEvent]] = {
    event_type: _builder(event_type) for event_type in FOLLOW_UP_TYPES
}
