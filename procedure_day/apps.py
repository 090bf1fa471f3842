from django.apps import AppConfig


class ProcedureDayConfig(AppConfig):
    name = "procedure_day"
    verbose_name = "Procedure day"

    def ready(self) -> None:
        # Registers the message kinds this app writes rows for.
        from procedure_day import messages  # noqa: F401
