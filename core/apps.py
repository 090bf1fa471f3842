from typing import Any

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from core import throttle

        def failed(sender: Any, credentials: dict[str, Any], **kwargs: Any) -> None:
            # Every password check that fails, through any sign-in path, counts against the name.
            throttle.record_failure(str(credentials.get("username") or ""))

        def succeeded(sender: Any, user: Any, **kwargs: Any) -> None:
            throttle.record_success(user.get_username())

        user_login_failed.connect(failed, dispatch_uid="core.throttle.failed", weak=False)
        user_logged_in.connect(succeeded, dispatch_uid="core.throttle.succeeded", weak=False)
