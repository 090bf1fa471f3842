"""The kinds of message the outbox can send, registered by the apps that know what they say.

An app registers each kind it writes rows for, with the function that builds the message when
the row is sent (from the database as it stands then, so a message never says what was true
only when it was queued). The outbox looks kinds up here and imports none of those apps; a
later app (say, HL7 or webhooks) adds its own kinds the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.utils import timezone

if TYPE_CHECKING:
    from outbox.models import Notification


class NothingToSend(Exception):
    """The message is moot (the case was cancelled, there is no address): the row is skipped."""


@dataclass(frozen=True)
class Message:
    channel: str
    to: str
    subject: str
    body: str


Builder = Callable[["Notification", datetime], Message]


@dataclass(frozen=True)
class MessageKind:
    code: str
    label: str
    build: Builder


_KINDS: dict[str, MessageKind] = {}


def register(code: str, label: str, build: Builder) -> MessageKind:
    """Register a kind once; registering the same code with another builder is a mistake."""
    existing = _KINDS.get(code)
    if existing is not None and existing.build is not build:
        raise ValueError(f"Message kind {code!r} is already registered by {existing.build.__module__}.")
    kind = MessageKind(code, label, build)
    _KINDS[code] = kind
    return kind


def lookup(code: str) -> MessageKind | None:
    return _KINDS.get(code)


def registered() -> list[MessageKind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.code)


def label_of(code: str) -> str:
    kind = _KINDS.get(code)
    return kind.label if kind is not None else code


# --- change events -------------------------------------------------------------------------
# The changes other systems hear of (webhooks subscribe to them by code; HL7 maps them to SIU
# triggers). The app that makes the change registers its kinds; ``event_record`` takes no other.

_EVENTS: dict[str, str] = {}


def register_event(code: str, label: str) -> None:
    existing = _EVENTS.get(code)
    if existing is not None and existing != label:
        raise ValueError(f"Change event kind {code!r} is already registered as {existing!r}.")
    _EVENTS[code] = label


def event_kinds() -> list[tuple[str, str]]:
    """(code, label) of every registered kind, in the order the apps registered them."""
    return list(_EVENTS.items())


def is_event_kind(code: str) -> bool:
    return code in _EVENTS


def build_message(notification: Notification, *, now: datetime | None = None) -> Message:
    """The message for a row as things stand now; raises NothingToSend if it is moot."""
    kind = _KINDS.get(notification.kind)
    if kind is None:
        raise NothingToSend("unknown_kind")
    return kind.build(notification, now or timezone.now())
