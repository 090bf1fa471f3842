from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self) -> None:
        # Registers the message kinds this app writes rows for, and the changes it announces.
        from scheduling import events, messages  # noqa: F401
