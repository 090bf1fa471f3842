"""``/plan/``: plan a day (schedulers and admins). A plan is asked for, solved by the worker
while the page shows its progress, then shown beside the day as it is: the figures against
first come first served, the cases it moves, the board before and after, and a button that
applies it."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.audit import audit_patients
from planner.board import plan_board
from planner.models import PlanRun, PlanStatus
from planner.selectors import plans_visible_to
from planner.services import PlanStale, plan_apply, plan_queue
from procedure_day.board import day_board
from rooms.models import ProcedureRoom, Site
from scheduling import policy
from web.access import not_found, page
from web.context import current_site
from web.views.board import is_fragment
from web.views.day import _day, _nav


def _run(request: HttpRequest, pk: UUID) -> PlanRun | None:
    return plans_visible_to(request.user).filter(pk=pk).first()


@page(policy.PLANNERS)
def plan_home(request: HttpRequest) -> HttpResponse:
    """The form, and the plans of the last hour."""
    site = current_site(request)
    day = _day(request, site)
    if request.method == "POST":
        if site is None:
            return redirect("web:plan")
        raw = request.POST.get("date", "")
        try:
            asked = date.fromisoformat(raw)
        except ValueError:
            messages.error(request, "Choose the day to plan.")
            return redirect(f"{reverse('web:plan')}?site={site.pk}")
        run = plan_queue(actor=request.user, site=site, day=asked, params=_what_if_params(request, site))
        return redirect("web:plan_detail", pk=run.pk)
    rooms = list(ProcedureRoom.objects.filter(site=site, is_active=True).order_by("name")) if site else []
    mine = plans_visible_to(request.user).filter(requested_by_id=request.user.pk)
    runs = list(mine.order_by("-created_at")[:10])
    return render(
        request,
        "web/plan.html",
        {
            "title": "Plan the day",
            "site": site,
            "runs": runs,
            "rooms": rooms,
            "budget": round(settings.PLAN_BUDGET_SECONDS),
            "max_move": settings.PLAN_MAX_MOVE_MINUTES,
            **_nav(day),
        },
    )


def _count(request: HttpRequest, name: str) -> int:
    raw = request.POST.get(name, "0").strip()
    return min(10, int(raw)) if raw.isascii() and raw.isdigit() else 0


def _what_if_params(request: HttpRequest, site: Site) -> dict[str, Any]:
    """The capacity change the form asks to compare, if any (``compare`` pressed)."""
    if "compare" not in request.POST:
        return {}
    room = request.POST.get("without_room", "").strip()
    known = room.isascii() and room.isdigit() and len(room) <= 18
    without = [int(room)] if known and ProcedureRoom.objects.filter(pk=int(room), site=site).exists() else []
    return {
        "what_if": {
            "bays": _count(request, "bays"),
            "rad_techs": _count(request, "rad_techs"),
            "nurses": _count(request, "nurses"),
            "without_rooms": without,
            "week": request.POST.get("week") == "1",
        }
    }


COLUMNS = (("plan", "Plan"), ("first_come_first_served", "First come, first served"), ("as_booked", "As booked"))


def _figures(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The three columns of the comparison: the plan, first come first served, as booked."""
    columns = []
    for name, label in (
        ("plan", "Plan"),
        ("first_come_first_served", "First come, first served"),
        ("as_booked", "As booked"),
    ):
        figures = result["figures"].get(name)
        if figures is not None:
            columns.append({"label": label, **figures})
    return columns


@page(policy.PLANNERS)
def plan_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    run = _run(request, pk)
    if run is None:
        return not_found(request, "plan")
    context: dict[str, Any] = {"title": "Plan the day", "run": run, "site": run.site, **_nav(run.day)}
    running = run.status in (PlanStatus.QUEUED, PlanStatus.RUNNING)
    context["running"] = running
    if run.status in (PlanStatus.DONE, PlanStatus.APPLIED) and run.result:
        result = run.result
        now = timezone.now()
        before = day_board(request.user, run.site, run.day, now=now)
        if before.patient_ids:
            audit_patients(request.user, "plan.read", before.patient_ids, site=run.site.pk, date=run.day.isoformat())
        context.update(
            result=result,
            columns=_figures(result),
            moves=[row for row in result["cases"] if row["booking"] and (row["moved_minutes"] or row["changed"])],
            added=[row for row in result["cases"] if row["booking"] is None],
            before=before,
            after=plan_board(before, result, run.site),
            zone=run.site.zone,
            day=run.day,
        )
    if is_fragment(request):
        if not running:
            # Done (or failed): the whole page shows it, so htmx loads it afresh.
            return HttpResponse(headers={"HX-Refresh": "true"})
        return render(request, "web/_plan_progress.html", context)
    return render(request, "web/plan_detail.html", context)


@require_POST
@page(policy.PLANNERS)
def plan_apply_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    run = _run(request, pk)
    if run is None:
        return not_found(request, "plan")
    try:
        applied = plan_apply(actor=request.user, run=run)
    except PlanStale as exc:
        messages.error(request, f"Not applied: {exc.message}")
        return redirect("web:plan_detail", pk=run.pk)
    moved, created = len(applied["moved"]), len(applied["created"])
    messages.success(
        request,
        f"Plan applied: {moved} case{'s' if moved != 1 else ''} moved, {created} booked from the waiting list.",
    )
    return redirect(f"{reverse('web:board')}?site={run.site.pk}&date={run.day.isoformat()}")
