from typing import Any

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save

        from api import strict
        from api.models import ApiToken

        strict.install()

        def revoke_tokens(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
            # A new password or a deactivated account must end every session a stolen or
            # forgotten token still holds; the old password may be why it was changed.
            fields = kwargs.get("update_fields")
            if raw or instance.pk is None or (fields is not None and not {"password", "is_active"} & set(fields)):
                return
            before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
            if before is None:
                return
            if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
                ApiToken.objects.filter(user_id=instance.pk).delete()

        pre_save.connect(revoke_tokens, sender=get_user_model(), dispatch_uid="api.revoke_tokens", weak=False)
