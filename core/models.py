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


class Scope(models.TextChoices):
    """What a system client's key lets it do. A key acts as a scheduler, narrowed to these."""

    SCHEDULE_READ = "schedule:read", "Read the schedule (cases, resources, availability; patients by id only)"
    BOOK = "book", "Book, hold, move and cancel cases"
    PATIENTS_READ = "patients:read", "Read patients' demographics"


class ServiceAccount(models.Model):
    """A system that calls the API (an EHR, a portal, an interface engine), not a person.

    It signs in with a key, never a password. Its user is the identity the audit trail names;
    that user has no password and cannot open the pages."""

    name = models.CharField(max_length=80, unique=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="service_account")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A service account's key. Only its digest is kept; ``prefix`` (the key's first characters,
    not secret) tells keys apart in lists and the audit trail."""

    account = models.ForeignKey(ServiceAccount, on_delete=models.CASCADE, related_name="keys")
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({', '.join(self.scopes)})"


class FeedToken(models.Model):
    """A person's secret for their calendar feeds (iCalendar subscriptions cannot send a
    header, so it goes in the address). Only its digest is kept; rotating it revokes the old."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feed_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"feed token of {self.user} ({'revoked' if self.revoked_at else 'active'})"


class IdempotencyRecord(models.Model):
    """The first response to a request with an Idempotency-Key, replayed for repeats.

    Claimed (inserted without an answer) before the change it guards runs and answered after
    it commits; the unique index makes a concurrent duplicate wait and then replay instead of
    acting twice.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=100)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    # The rendered bytes, so a replay is byte-for-byte what the first caller got.
    body = models.TextField(blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        # Kept under the name it was created with, by the REST API before the FHIR operations
        # took keys too.
        db_table = "api_idempotencyrecord"
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="api_idempotencyrecord_unique_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
