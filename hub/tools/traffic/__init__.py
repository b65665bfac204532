"""Simulated agency traffic, a tool for people: an endless stream of events from every agency, in realistic
proportions, about cases that hang together. `hub simulate`, `hub up --demo`, `hub bench` and the browser tests
all draw from `Traffic` (`stream`); each agency's events are made in a module of their own (`opening`, `custody`,
`supervision`, `courts`, `victims`), the proportions and their reasons are in `mix`, and `invalid` breaks events
the way agency systems do.
"""

from hub.tools.traffic.identifiers import CASE_NUMBERS, CaseIdentifiers, case_identifiers
from hub.tools.traffic.making import SimulatedEvent
from hub.tools.traffic.mix import NEW_CASE_CHANCE
from hub.tools.traffic.stream import Traffic

__all__ = [
    "CASE_NUMBERS",
    "NEW_CASE_CHANCE",
    "CaseIdentifiers",
    "SimulatedEvent",
    "Traffic",
    "case_identifiers",
]
