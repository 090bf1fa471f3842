"""A physician's day on screen, on a phone and on paper, and the day's cases for nurses: the
same selector, policy and read audit as the API's daily list."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core.audit import audit_patients
from core.validators import FIRST_YEAR, LAST_YEAR
from procedure_day.selectors import DailyCase, cases_of_day, daily_list_for_physician
from rooms.models import Site
from scheduling import policy
from staff.models import StaffMember, StaffRole
from web.access import page
from web.context import current_site
from web.rows import day_rows


def _day(request: HttpRequest, site: Site | None) -> date:
    """The day asked for (``?date=YYYY-MM-DD`` within the clinic's years), else the site's today."""
    raw = request.GET.get("date", "")
    try:
        asked = date.fromisoformat(raw)
    except ValueError:
        asked = None
    if asked is not None and FIRST_YEAR <= asked.year <= LAST_YEAR:
        return asked
    now = timezone.now()
    return (now.astimezone(site.zone) if site is not None else now).date()


def _nav(day: date) -> dict[str, Any]:
    return {"day": day, "previous_day": day - timedelta(days=1), "next_day": day + timedelta(days=1)}


@page()
def physician_day(request: HttpRequest) -> HttpResponse:
    """``/day/``: one's own day, or (schedulers, nurses, techs, admins) a physician's chosen."""
    site = current_site(request)
    day = _day(request, site)
    me = getattr(request.user, "staff_member", None)
    physicians = StaffMember.objects.filter(role=StaffRole.PHYSICIAN, is_active=True).order_by("last_name")
    may_pick = policy.may(request.user, policy.DAILY_LIST_OF_ANYONE)
    physician: StaffMember | None = None
    wanted = request.GET.get("physician", "")
    if wanted.isdigit() and may_pick:
        physician = physicians.filter(pk=int(wanted)).first()
    elif policy.may(request.user, policy.PHYSICIANS) and me is not None:
        physician = me
    cases: list[DailyCase] = []
    title = f"{physician}'s day" if physician else "A physician's day"
    own_cases = physician is None and me is not None and policy.reads_own_cases(request.user) and site is not None
    if physician is not None:
        daily = daily_list_for_physician(request.user, physician, day)
        cases = daily.cases
        audit_patients(request.user, "daily_list.read", daily.patient_ids, physician=physician.pk, date=day.isoformat())
    elif own_cases and site is not None:
        # A tech's own day: the cases they work on, whoever the physician.
        cases = cases_of_day(request.user, site, day)
        title = "Your day"
        audit_patients(request.user, "day_cases.read", [c.booking.patient_id for c in cases], date=day.isoformat())
    context = {
        **_nav(day),
        "physician": physician,
        "physicians": physicians if may_pick else [],
        "rows": day_rows(cases, request.user),
        "title": title,
        "all_physicians": own_cases,
    }
    return render(request, "web/day.html", context)


@page(policy.SEE_EVERY_CASE | policy.OWN_CASES_ONLY)
def cases_of_the_day(request: HttpRequest) -> HttpResponse:
    """``/cases/``: every case of the site's day the user may see, in order."""
    site = current_site(request)
    day = _day(request, site)
    cases = cases_of_day(request.user, site, day) if site is not None else []
    audit_patients(
        request.user, "day_cases.read", [c.booking.patient_id for c in cases], site=site and site.pk, date=str(day)
    )
    context = {**_nav(day), "rows": day_rows(cases, request.user), "title": "Cases of the day", "all_physicians": True}
    return render(request, "web/day.html", context)
