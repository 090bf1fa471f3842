from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One write, or one read of patient data. Holds ids, never patient data itself."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="Username, or the system process that acted.")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="core_audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"


class ThrottleCounter(models.Model):
    """A sign-in counter or lockout shared by every process when Redis is not in use (or not
    answering). Incremented with one atomic upsert, so concurrent guesses all count; ``until`` is
    the end of its window in epoch seconds. Keys are digests: no username or address in clear."""

    key = models.CharField(max_length=80, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    until = models.FloatField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key} {self.count}"
