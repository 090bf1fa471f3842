"""The day board as a plan would leave it: the board of the day as it is, with every case the
plan moves drawn where it goes and every waiting-list case it fits drawn as new. What a bar says
is what the board says for that case (initials only where the viewer may see the case)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from procedure_day.board import Bar, Board, Row, _Scale
from rooms.models import Site
from scheduling.legroles import LEG_ROLES

COLUMN_OF_KIND = {"recovery_bay": "bay"}


def _placed(item: Any, scale: _Scale) -> Any:
    """A bar or block on the (possibly wider) axis of the plan's board."""
    left, width = scale.place(item.starts_at, item.ends_at)
    return replace(item, left=left, width=width)


def plan_board(current: Board, result: dict[str, Any], site: Site) -> Board:
    """``current`` (``procedure_day.board.day_board`` of the plan's day) with the plan's cases
    put where the plan puts them."""
    rows: dict[str, Row] = {row.key: row for group in current.groups for row in group.rows}
    cases = result.get("cases", [])
    moving = {row["booking"] for row in cases if row["booking"] is not None}
    labels: dict[int, Bar] = {}
    for row in rows.values():
        for bar in row.bars:
            labels.setdefault(bar.booking_id, bar)
    legs = [(row, leg) for row in cases for leg in row["legs"]]
    starts = [datetime.fromisoformat(leg["start"]) for _, leg in legs]
    ends = [datetime.fromisoformat(leg["end"]) for _, leg in legs]
    axis_start = min([current.starts_at, *starts])
    axis_end = max([current.ends_at, *ends])
    scale = _Scale(axis_start, axis_end)
    zone = site.zone

    new_rows: dict[str, Row] = {}
    for key, row in rows.items():
        kept = [
            replace(
                bar, left=scale.place(bar.starts_at, bar.ends_at)[0], width=scale.place(bar.starts_at, bar.ends_at)[1]
            )
            for bar in row.bars
            if bar.booking_id not in moving
        ]
        blocks = [
            replace(
                block,
                left=scale.place(block.starts_at, block.ends_at)[0],
                width=scale.place(block.starts_at, block.ends_at)[1],
            )
            for block in row.blocks
        ]
        new_rows[key] = Row(row.key, row.name, kept, blocks)
    count = 0
    for case, leg in legs:
        resource = leg["resource"]
        key = f"{COLUMN_OF_KIND.get(resource['kind'], resource['kind'])}-{resource['id']}"
        target = new_rows.get(key)
        if target is None:
            continue
        start, end = datetime.fromisoformat(leg["start"]), datetime.fromisoformat(leg["end"])
        left, width = scale.place(start, end)
        booking = case["booking"]
        before = labels.get(booking) if booking is not None else None
        code = case["procedure_type"]
        label = before.label if before is not None else f"New · {code}"
        moved = case.get("moved_minutes") or 0
        note = f" · moved {moved:+d} min" if moved else (" · new from the waiting list" if booking is None else "")
        title = (
            f"{'Case ' + str(booking) if booking else 'Waiting case ' + str(case['waiting'])} · {code} · "
            f"{LEG_ROLES[leg['role']].label} {start.astimezone(zone):%H:%M}–{end.astimezone(zone):%H:%M}{note}"
        )
        target.bars.append(
            Bar(
                leg_id=0,
                booking_id=booking or 0,
                role=leg["role"],
                status=before.status if before is not None else "new",
                status_label=before.status_label if before is not None else "New",
                label=label,
                title=title,
                starts_at=start,
                ends_at=end,
                left=left,
                width=width,
                delay=None,
                opens_case=before.opens_case if before is not None else False,
            )
        )
        count += 1
    groups = [replace(group, rows=[new_rows[row.key] for row in group.rows]) for group in current.groups]
    hours = []
    moment = axis_start.replace(minute=0, second=0, microsecond=0)
    while moment < axis_end:
        if moment >= axis_start:
            hours.append((f"{moment.astimezone(zone):%H:%M}", scale.place(moment, moment)[0]))
        moment += timedelta(hours=1)
    return replace(
        current,
        starts_at=axis_start,
        ends_at=axis_end,
        hours=hours,
        groups=groups,
        now_left=None,
        delays={},
        bar_count=sum(len(row.bars) for row in new_rows.values()),
    )
