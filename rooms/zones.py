"""Which time zone an instant is given in: the zone of the site it belongs to, else the
clinic's (``CLINIC_TIME_ZONE``, or the first site's when that is unset, or UTC before any site
exists). Every face that shows an instant asks here, so none mixes UTC and local times."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models

from rooms.models import Site

# How an object leads to its site: its own, or that of its room, equipment, bay or case.
SITE_HOLDERS = ("room", "equipment", "recovery_bay", "booking")


def site_zone_map() -> dict[int, ZoneInfo]:
    return {pk: ZoneInfo(tz) for pk, tz in Site.objects.order_by("pk").values_list("id", "timezone")}


def clinic_zone(zones: dict[int, ZoneInfo] | None = None) -> ZoneInfo:
    if settings.CLINIC_TIME_ZONE:
        return ZoneInfo(settings.CLINIC_TIME_ZONE)
    zones = site_zone_map() if zones is None else zones
    return next(iter(zones.values()), ZoneInfo("UTC"))


def site_of(instance: Any) -> int | None:
    if isinstance(instance, dict):
        found = instance.get("site_id", instance.get("site"))
        return found if isinstance(found, int) else None
    if not isinstance(instance, models.Model):
        return None
    site_id = getattr(instance, "site_id", None)
    for name in SITE_HOLDERS:
        if site_id is None and getattr(instance, f"{name}_id", None) is not None:
            site_id = getattr(getattr(instance, name), "site_id", None)
    return site_id


def zone_of(instance: Any, zones: dict[int, ZoneInfo]) -> ZoneInfo:
    """The zone ``instance``'s instants are given in, from ``zones`` (``site_zone_map()``)."""
    site_id = site_of(instance)
    if site_id is not None and site_id in zones:
        return zones[site_id]
    return clinic_zone(zones)
