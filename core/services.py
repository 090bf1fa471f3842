"""Generic writes for reference data (sites, rooms, staff, ...): validated, saved and audited
in one transaction. Booking writes have services of their own in scheduling."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models, transaction

from core.audit import audit_record

M = TypeVar("M", bound=models.Model)


@transaction.atomic
def record_create(*, actor: Any, model: type[M], data: dict[str, Any]) -> M:
    """Create after ``full_clean``; raises django ValidationError with field messages."""
    instance = model(**data)
    instance.full_clean()
    instance.save()
    audit_record(actor=actor, action=f"{model._meta.model_name}.create", obj=instance, details={"fields": sorted(data)})
    return instance


@transaction.atomic
def record_update(*, actor: Any, instance: M, data: dict[str, Any]) -> M:
    for field, value in data.items():
        setattr(instance, field, value)
    instance.full_clean()
    instance.save()
    audit_record(
        actor=actor, action=f"{instance._meta.model_name}.update", obj=instance, details={"fields": sorted(data)}
    )
    return instance


@transaction.atomic
def record_delete(*, actor: Any, instance: models.Model) -> None:
    """Delete; a ProtectedError (still referred to) propagates for the caller to report."""
    audit_record(actor=actor, action=f"{instance._meta.model_name}.delete", obj=instance)
    instance.delete()
