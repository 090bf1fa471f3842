"""A run of the day planner: asked for by a person (or a key), solved by a worker, kept for an
hour for that person to look at and apply. Ids, codes and times only: the waiting list names
patients by id, the result names cases and resources by id."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class PlanStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    APPLIED = "applied", "Applied"


class PlanRun(models.Model):
    # Unguessable: the run's address is shared with no one but its owner, and says nothing.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    site = models.ForeignKey("rooms.Site", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=PlanStatus.choices, default=PlanStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    stage = models.CharField(max_length=80, blank=True)
    # What was asked: the waiting list (patients by id), the budget, the seed, the what-if.
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="planner_run_queued", condition=models.Q(status="queued")),
            models.Index(fields=["expires_at"], name="planner_run_expiry"),
        ]

    def __str__(self) -> str:
        return f"plan of {self.day} ({self.status})"
