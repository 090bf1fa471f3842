from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection
from django.db.models.expressions import RawSQL
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from api.models import ApiToken, hash_token
from core import logs
from core.clients import authenticate_key, is_api_key
from core.models import ApiKey
from core.roles import ALL_ROLES, remember_roles


def role_names_of_user() -> RawSQL:
    """The user's role groups as one comma-joined text, read in the token's query. Only the
    role names are joined (no other group name can split into one)."""
    join = "string_agg(g.name, ',')" if connection.vendor == "postgresql" else "group_concat(g.name, ',')"
    user_groups = connection.ops.quote_name(User.groups.through._meta.db_table)
    groups = connection.ops.quote_name(Group._meta.db_table)
    tokens = connection.ops.quote_name(ApiToken._meta.db_table)
    marks = ", ".join("%s" for _ in ALL_ROLES)
    # Table names and the fixed role names only; no value from a request.
    return RawSQL(  # noqa: S611
        f"SELECT {join} FROM {user_groups} ug JOIN {groups} g ON g.id = ug.group_id "
        f"WHERE ug.user_id = {tokens}.user_id AND g.name IN ({marks})",
        ALL_ROLES,
    )


def issue_token(user: Any) -> tuple[str, ApiToken]:
    raw = ApiToken.new_raw()
    token = ApiToken.objects.create(
        user=user, key_hash=hash_token(raw), expires_at=timezone.now() + timedelta(hours=settings.API_TOKEN_HOURS)
    )
    return raw, token


class BearerAuthentication(authentication.BaseAuthentication):
    """A staff member's token (``POST /api/v1/auth/token/``) or a service account's API key
    (``sk_…``), both as ``Authorization: Bearer <value>``."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken | ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Bearer <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("The token has characters a token never has.") from exc
        if is_api_key(raw):
            client = authenticate_key(raw, method=request.method or "", path=request.path)
            if client is None:
                raise exceptions.AuthenticationFailed("The API key is not valid or has been revoked.")
            logs.user_id.set(str(client[0].pk))
            return client
        token = (
            ApiToken.objects.select_related("user")
            .annotate(role_names=role_names_of_user())
            .filter(key_hash=hash_token(raw))
            .first()
        )
        now = timezone.now()
        if token is None or token.expires_at <= now or not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token is not valid or has expired.")
        idle = timedelta(minutes=settings.API_TOKEN_IDLE_MINUTES)
        if (token.last_used_at or token.created_at) + idle <= now:
            # A token nobody has used for a while is more likely lost than in use.
            token.delete()
            raise exceptions.AuthenticationFailed("The token has been idle too long; request a new one.")
        if token.last_used_at is None or now - token.last_used_at >= timedelta(seconds=60):
            # At most one write a minute per token: the idle clock needs no finer grain.
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        # Read with the token, so the role checks of the request need no query of their own.
        remember_roles(token.user, (token.role_names or "").split(","))
        logs.user_id.set(str(token.user_id))
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}
