"""Which plans a person may see: their own, or every one for an administrator."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from core.roles import ADMIN, has_any_role
from planner.models import PlanRun


def plans_visible_to(user: Any) -> QuerySet[PlanRun]:
    """Runs not yet past their keeping time, the caller's own (all of them for an admin)."""
    runs = PlanRun.objects.filter(expires_at__gt=timezone.now()).select_related("site")
    if has_any_role(user, frozenset({ADMIN})):
        return runs
    return runs.filter(requested_by_id=getattr(user, "pk", None))
