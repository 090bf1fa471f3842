"""Slots as the pages show them: grouped by the site's local day, each with its team, and the
pins that hold exactly the resources shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import groupby
from zoneinfo import ZoneInfo

from rooms.models import Site
from scheduling.availability.search import Slot
from scheduling.legroles import LEG_ROLES

SHOWN = (
    "physician",
    "room",
    "c_arm",
    "rf_generator",
    "rad_tech",
    "sedation_nurse",
    "anesthesia",
    "device_rep",
    "recovery_bay",
)


@dataclass
class SlotView:
    slot: Slot
    zone: ZoneInfo
    site: str
    team: list[tuple[str, str]]
    pins: dict[str, int]

    @property
    def iso(self) -> str:
        return self.slot.start.isoformat()

    @property
    def choice(self) -> str:
        """The start and its resources as one button value: "<ISO start>|room=3,c_arm=5"."""
        return self.iso + "|" + ",".join(f"{name}={value}" for name, value in sorted(self.pins.items()))


def slot_views(slots: list[Slot]) -> list[SlotView]:
    sites = {s.pk: s for s in Site.objects.filter(pk__in={slot.site_id for slot in slots})}
    out = []
    for slot in slots:
        site = sites[slot.site_id]
        by_role = {leg.role: leg for leg in slot.legs}
        team = [(str(LEG_ROLES[role].label), by_role[role].name) for role in SHOWN if role in by_role]
        pins = {}
        for leg in slot.legs:
            pin = LEG_ROLES[leg.role].pin
            if pin is not None:
                pins[pin] = leg.resource_id
        out.append(SlotView(slot, site.zone, site.name, team, pins))
    return out


def by_day(views: list[SlotView]) -> list[tuple[date, list[SlotView]]]:
    keyed = sorted(views, key=lambda v: (v.slot.start.astimezone(v.zone).date(), v.slot.start))
    return [(day, list(group)) for day, group in groupby(keyed, key=lambda v: v.slot.start.astimezone(v.zone).date())]
