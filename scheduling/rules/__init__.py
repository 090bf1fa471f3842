"""The rulebook (``rules.rulebook``) and what it reads (``rules.inputs``).

``rulebook_for`` reads the inventory (one query); ``Rulebook.read_window`` reads the window
(one more, after the booking guard's locks when the caller writes). Every question is then
answered from memory.
"""

from __future__ import annotations

from datetime import datetime

from scheduling.request import CaseRequest
from scheduling.rules.inputs import Window, load_inventory
from scheduling.rules.rulebook import DAY, Rulebook, wanted_for


def rulebook_for(
    request: CaseRequest,
    *,
    lo: int,
    hi: int,
    now: datetime,
    allow_past: bool = False,
    hold_override: bool = False,
    prefer: dict[str, tuple[str, int]] | None = None,
    margin: int = DAY,
) -> Rulebook:
    """The rulebook for ``request`` over minutes ``[lo, hi)``, with its inventory read.

    Raises UnknownReference for a pinned id that does not exist, BookingInvalid for levels or
    a sedation level the procedure does not allow (before reading anything).
    """
    request.legs  # noqa: B018 - planning first: a request the catalogue refuses reads nothing
    return Rulebook(
        request,
        load_inventory(wanted_for(request)),
        Window(lo * 60, hi * 60),
        now=now,
        span=(lo - margin, hi + margin),
        allow_past=allow_past,
        hold_override=hold_override,
        prefer=prefer,
    )
