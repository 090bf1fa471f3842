from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models

from core.models import AuditEvent

SYSTEM_ACTOR = "system"


def audit_event(
    *, actor: Any, action: str, object_type: str, object_id: str, details: dict[str, Any] | None = None
) -> AuditEvent:
    """An unsaved audit record, for a writer that inserts it with other rows."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent(
        actor=user,
        actor_label=user.get_username() if user is not None else SYSTEM_ACTOR,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=details or {},
    )


def audit_record(*, actor: Any, action: str, obj: models.Model, details: dict[str, Any] | None = None) -> AuditEvent:
    """Write an audit record inside the caller's transaction.

    ``actor`` is a user, or ``None`` for the system. ``details`` must hold ids and codes only,
    never names, phone numbers or other patient data.
    """
    event = audit_event(
        actor=actor, action=action, object_type=obj._meta.label_lower, object_id=str(obj.pk), details=details
    )
    # One INSERT ... RETURNING; the trail has no signals to run.
    AuditEvent.objects.bulk_create([event])
    return event


def audit_read(
    *, actor: Any, action: str, object_type: str, object_ids: list[Any], details: dict[str, Any] | None = None
) -> AuditEvent | None:
    """Record that ``actor`` read these records of patient data: one row per request."""
    if not object_ids:
        return None
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_label=user.get_username() if user is not None else SYSTEM_ACTOR,
        action=action,
        object_type=object_type,
        object_id=str(object_ids[0]) if len(object_ids) == 1 else f"{len(object_ids)} records",
        details={"ids": [str(i) for i in object_ids], **(details or {})},
    )


PATIENT_OBJECT = "patients.patient"


def audit_patients(actor: Any, action: str, patient_ids: Iterable[Any], **details: Any) -> AuditEvent | None:
    """One audit row for the patients an answer or a page shows (none when it shows none):
    every face records its reads of patient data through here."""
    ids = list(dict.fromkeys(patient_ids))
    return audit_read(actor=actor, action=action, object_type=PATIENT_OBJECT, object_ids=ids, details=details or None)
