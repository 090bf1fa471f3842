"""The day board: rooms, C-arms, staff and recovery bays of a site across one day, refreshing
itself for a wall display, with print and full-screen wall modes."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core.audit import audit_patients
from procedure_day.board import day_board
from rooms.models import Site
from web.access import page
from web.context import current_site
from web.views.day import _day, _nav


def is_fragment(request: HttpRequest) -> bool:
    """An htmx refresh asks for the part of the page that changes, not the whole page."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


@page()
def board(request: HttpRequest) -> HttpResponse:
    """``/board/?site=&date=&wall=1``: every role sees the board; what a bar says follows the
    role (a patient's initials only on cases the viewer may see)."""
    site = current_site(request)
    day = _day(request, site)
    if site is None:
        return render(request, "web/board.html", {"board": None, "title": "Day board", **_nav(day)})
    now = timezone.now()
    built = day_board(request.user, site, day, now=now)
    if built.patient_ids:
        audit_patients(request.user, "board.read", built.patient_ids, site=site.pk, date=day.isoformat())
    context = {
        **_nav(day),
        "board": built,
        "title": "Day board",
        "wall": request.GET.get("wall") == "1",
        "refresh_seconds": settings.BOARD_REFRESH_SECONDS,
        "query": day_query(request, site, day),
        "zone": site.zone,
        "now": now,
        "is_today": now.astimezone(site.zone).date() == day,
    }
    template = "web/_board.html" if is_fragment(request) else "web/board.html"
    return render(request, template, context)


def day_query(request: HttpRequest, site: Site | None, day: object) -> str:
    """The query a refreshing page asks again with: its site, and its day when one was chosen
    (a page left open on today follows the clock past midnight)."""
    parts = [f"site={site.pk}"] if site is not None else []
    if request.GET.get("date"):
        parts.append(f"date={day}")
    return "&".join(parts)
