from typing import Any

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from core import throttle
        from core.net import client_ip

        def failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
            # Every password check that fails, through any sign-in path, counts against the name
            # and the address it came from.
            address = client_ip(request) if request is not None and hasattr(request, "META") else None
            throttle.record_failure(str(credentials.get("username") or ""), address)

        def succeeded(sender: Any, user: Any, **kwargs: Any) -> None:
            throttle.record_success(user.get_username())

        user_login_failed.connect(failed, dispatch_uid="core.throttle.failed", weak=False)
        user_logged_in.connect(succeeded, dispatch_uid="core.throttle.succeeded", weak=False)
