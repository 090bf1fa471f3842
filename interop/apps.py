from django.apps import AppConfig


class InteropConfig(AppConfig):
    """The standards face: FHIR R4 (with the IHE scheduling operations), HL7 v2 SIU,
    iCalendar feeds and webhooks, built on the selectors, policy and services."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "interop"
    verbose_name = "Interoperability"
