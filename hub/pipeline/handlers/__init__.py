"""Enrich and route: the rules applied to one event at a time on what the CaseFile holds, then who is told what.

One handler per event type, grouped in one module per source agency (`court`, `witness_care`, `prison`,
`parole`, `victim_contact`), each a mixin of `EventHandlers` (`dispatch`), which holds the table of which event
type each handler takes. A handler returns the identifiers it newly linked (they may unpark waiting events) and
the notifications it produced; it raises `Unmatched` when the event concerns no case yet. Notifiable events
about an offender (most of the catalogue) share one path, in `common` with what every source uses: find the
offender through any identifier, then notify every victim of every open, eligible case, with content built by
`routing.content`.
"""

from hub.pipeline.handlers.common import (
    LINKING_EVENTS,
    Effects,
    needs_of,
    of_type,
    required,
    subject_keys,
)
from hub.pipeline.handlers.dispatch import EventHandlers

__all__ = ["LINKING_EVENTS", "Effects", "EventHandlers", "needs_of", "of_type", "required", "subject_keys"]
