"""``/calendar/``: a person's calendar feed links. The link holds a secret, shown once when it
is made; making a new one or turning feeds off stops the old link at once."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.clients import feed_token_issue, feed_token_revoke
from core.models import FeedToken
from rooms.models import ProcedureRoom
from scheduling import policy
from web.access import page
from web.context import current_site


def _feeds(request: HttpRequest, token: str) -> list[tuple[str, str]]:
    base = f"{settings.PUBLIC_URL}/ical/{token}"
    feeds = []
    member = getattr(request.user, "staff_member", None)
    if member is not None and member.role == "physician":
        feeds.append((f"My procedures ({member})", f"{base}/physician/{member.pk}.ics"))
    site = current_site(request)
    rooms = ProcedureRoom.objects.filter(is_active=True, **({"site": site} if site else {})).order_by("name")
    feeds += [(f"{room.name} – cases", f"{base}/room/{room.pk}.ics") for room in rooms]
    return feeds


@page(policy.EVERYONE)
def calendar_links(request: HttpRequest) -> HttpResponse:
    active = FeedToken.objects.filter(user_id=int(request.user.pk or 0), revoked_at__isnull=True).first()
    token = request.session.pop("new_feed_token", None)
    return render(
        request,
        "web/calendar.html",
        {"title": "Calendar feeds", "active": active, "feeds": _feeds(request, token) if token else []},
    )


@require_POST
@page(policy.EVERYONE)
def calendar_new(request: HttpRequest) -> HttpResponse:
    # Shown once on the next page, then gone from the session.
    request.session["new_feed_token"] = feed_token_issue(user=request.user)
    messages.success(request, "New feed links made; any earlier link has stopped working.")
    return redirect("web:calendar")


@require_POST
@page(policy.EVERYONE)
def calendar_off(request: HttpRequest) -> HttpResponse:
    if feed_token_revoke(user=request.user):
        messages.success(request, "Your feed links are turned off; subscribed calendars stop updating.")
    return redirect("web:calendar")
