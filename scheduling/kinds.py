"""The message kinds scheduling writes outbox rows for (registered in ``scheduling.messages``),
and the changes it announces to other systems (registered in ``scheduling.events``)."""

from django.db import models


class SchedulingMessage(models.TextChoices):
    PREP_REMINDER = "prep_reminder", "Preparation reminder"
    DAY_BEFORE_REMINDER = "day_before_reminder", "Day-before reminder"
    FOLLOW_UP_CALLS = "follow_up_calls", "Next-day follow-up call list"
    DAILY_LIST = "daily_list", "Physician's daily list"
    CREDENTIAL_EXPIRY_60 = "credential_expiry_60", "Credential expires in 60 days"
    CREDENTIAL_EXPIRY_30 = "credential_expiry_30", "Credential expires in 30 days"
    DOWNTIME_IMPACT = "downtime_impact", "Downtime affects a booking"


class SchedulingEvent(models.TextChoices):
    BOOKING_CREATED = "booking.created", "A case was booked (or its hold confirmed)"
    BOOKING_RESCHEDULED = "booking.rescheduled", "A case moved to another time or other resources"
    BOOKING_CANCELLED = "booking.cancelled", "A case was cancelled"
    BOOKING_STATUS_CHANGED = (
        "booking.status_changed",
        "A case's status changed (check-in to discharge, no-show)",
    )
    BOOKING_UPDATED = (
        "booking.updated",
        "A case's legs were re-timed on the day (its procedure ended early or late)",
    )
    DOWNTIME_CREATED = "downtime.created", "A room or C-arm was blocked"
    DOWNTIME_CHANGED = "downtime.changed", "A block of a room or C-arm changed"
    DOWNTIME_REMOVED = "downtime.removed", "A room or C-arm was reopened"
