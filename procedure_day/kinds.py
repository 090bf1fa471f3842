"""The message kinds the procedure day writes outbox rows for (registered in
``procedure_day.messages``)."""

from django.db import models


class ProcedureDayMessage(models.TextChoices):
    READY_FOR_DISCHARGE = "ready_for_discharge", "Patient ready for discharge"
    RECOVERY_CLASH = "recovery_clash", "Recovery clash after a late case"
