"""What every page's header shows: the site, its date and zone, the user and their role."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from core.roles import ADMIN, primary_role
from rooms.models import Site


def current_site(request: HttpRequest) -> Site | None:
    """The site the pages show: the one asked for (``?site=``), else the first active one."""
    cached = getattr(request, "_web_site", None)
    if cached is not None:
        return cached
    sites = Site.objects.filter(is_active=True).order_by("name")
    wanted = request.GET.get("site", "")
    site = sites.filter(pk=int(wanted)).first() if wanted.isdigit() else None
    site = site or sites.first()
    request._web_site = site  # type: ignore[attr-defined]
    return site


def header(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or request.path.startswith(("/admin/", "/api/")):
        return {}
    site = current_site(request)
    role = primary_role(user)
    now = timezone.now()
    local = now.astimezone(site.zone) if site is not None else now
    return {
        "site": site,
        "site_today": local.date(),
        "site_zone": f"{site.timezone} ({local.tzname()})" if site is not None else "UTC",
        "user_role": role or "no role",
        "is_admin": role == ADMIN,
    }
