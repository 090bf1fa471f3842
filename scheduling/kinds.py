"""The message kinds scheduling writes outbox rows for (registered in ``scheduling.messages``)."""

from django.db import models


class SchedulingMessage(models.TextChoices):
    PREP_REMINDER = "prep_reminder", "Preparation reminder"
    DAY_BEFORE_REMINDER = "day_before_reminder", "Day-before reminder"
    FOLLOW_UP_CALLS = "follow_up_calls", "Next-day follow-up call list"
    DAILY_LIST = "daily_list", "Physician's daily list"
    CREDENTIAL_EXPIRY_60 = "credential_expiry_60", "Credential expires in 60 days"
    CREDENTIAL_EXPIRY_30 = "credential_expiry_30", "Credential expires in 30 days"
    DOWNTIME_IMPACT = "downtime_impact", "Downtime affects a booking"
