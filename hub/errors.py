"""The hub's own exceptions, in one place. Their messages name fields, rules and references, never a victim's
personal data, so operators may read them (`hub.messages.operator_safe_reason`)."""

from __future__ import annotations

# (kind, value), for example ("noms_number", "A1234BC"): how an event names an offender, a case or a person.
IdentifierKey = tuple[str, str]


# ---- events that cannot be applied
class Rejected(ValueError):
    """A message that can never succeed for a reason other than its content's shape."""


class Unmatched(Exception):
    """The event concerns no case the hub knows yet: park it under these identifiers."""

    def __init__(self, keys: list[IdentifierKey]) -> None:
        self.keys = keys
        super().__init__("no case matches the event's identifiers")


class UnknownReference(ValueError):
    """The event refers to something the hub never produced: it can never succeed (a dead letter)."""


class IdentityConflict(ValueError):
    """The event's identifiers belong to different offender records. Joining them on an ordinary event's word
    could send one offender's news to another's victims, so it waits for an operator (replay after a link)."""

    def __init__(self, kinds: list[str]) -> None:
        super().__init__(
            f"envelope.subject: identifiers belong to different offender records ({', '.join(sorted(kinds))}); "
            "an OffenderIdentifiersLinked or PrisonerRecordsMerged must join them before this event is replayed"
        )


# ---- keys and the case store
class MissingKeys(RuntimeError):
    """The worker cannot protect what it writes: it does not start."""


class DataKeysMissing(RuntimeError):
    """The case store was opened without data keys, and a personal field was about to be read or written."""


class UnreadableValue(ValueError):
    """A stored value that no data key present decrypts: its key was removed, or the value was tampered with."""


# ---- requests from people
class VictimNotFound(LookupError):
    """No victim with this person reference on this case (the message names the references only)."""


class OperatorError(ValueError):
    """A request about operators that cannot be done; the message is safe to show."""


class BrokerUnreachable(RuntimeError):
    """The broker could not be reached to create topics or to start publishing."""
