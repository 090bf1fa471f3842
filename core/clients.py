"""System clients: service accounts and their scoped API keys.

A key is shown once, when it is issued; the database keeps its SHA-256 digest, so a leaked
table yields no usable key. A request with a key acts as a scheduler narrowed to the key's
scopes (``core.roles.scope_allows``), and every request made with one is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from core.audit import audit_record
from core.errors import BookingInvalid, InvalidTransition, Problem
from core.models import ApiKey, AuditEvent, FeedToken, Scope, ServiceAccount
from core.roles import SCHEDULER, remember_roles, remember_scopes

KEY_PREFIX = "sk_"
# The first characters of a key, kept in clear to tell keys apart.
SHOWN_CHARACTERS = 11


def key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def is_api_key(raw: str) -> bool:
    return raw.startswith(KEY_PREFIX)


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    # The key itself: given to the caller once, never stored.
    raw: str


def _checked_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown or not scopes:
        raise BookingInvalid(
            [
                Problem(
                    "invalid_scope",
                    f"Unknown scope {', '.join(unknown)}." if unknown else "Name at least one scope.",
                    field="scopes",
                    extra={"allowed": list(Scope.values)},
                )
            ]
        )
    return sorted(set(scopes))


@transaction.atomic
def service_account_create(*, actor: Any, name: str, scopes: list[str]) -> tuple[ServiceAccount, IssuedKey]:
    """A service account with its first key. Raises BookingInvalid for an empty or taken name
    or an unknown scope."""
    name = name.strip()
    if not name:
        raise BookingInvalid([Problem("name_missing", "Name the system this account is for.", field="name")])
    if ServiceAccount.objects.filter(name__iexact=name).exists():
        raise BookingInvalid([Problem("name_taken", "A service account has this name already.", field="name")])
    checked = _checked_scopes(scopes)
    user = User(username=f"svc-{slugify(name)[:100]}-{secrets.token_hex(3)}", first_name=name[:150])
    user.set_unusable_password()
    user.save()
    account = ServiceAccount.objects.create(
        name=name, user=user, created_by=actor if getattr(actor, "is_authenticated", False) else None
    )
    audit_record(actor=actor, action="service_account.create", obj=account, details={"scopes": checked})
    return account, api_key_issue(actor=actor, account=account, scopes=checked)


@transaction.atomic
def api_key_issue(*, actor: Any, account: ServiceAccount, scopes: list[str]) -> IssuedKey:
    """A new key for the account (say, to rotate one); the old keys stay until revoked."""
    if account.revoked_at is not None:
        raise InvalidTransition("The service account is revoked.", details={"account": account.pk})
    checked = _checked_scopes(scopes)
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        account=account, prefix=raw[:SHOWN_CHARACTERS], key_hash=key_digest(raw), scopes=checked
    )
    audit_record(actor=actor, action="api_key.issue", obj=key, details={"account": account.pk, "scopes": checked})
    return IssuedKey(key, raw)


@transaction.atomic
def api_key_revoke(*, actor: Any, key: ApiKey) -> ApiKey:
    """Revoke one key at once; its next request is refused."""
    current = ApiKey.objects.select_for_update().get(pk=key.pk)
    if current.revoked_at is None:
        current.revoked_at = timezone.now()
        current.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="api_key.revoke", obj=current, details={"account": current.account_id})
    return current


@transaction.atomic
def service_account_revoke(*, actor: Any, account: ServiceAccount) -> ServiceAccount:
    """Revoke the account and every key it has."""
    current = ServiceAccount.objects.select_for_update().get(pk=account.pk)
    now = timezone.now()
    if current.revoked_at is None:
        current.revoked_at = now
        current.save(update_fields=["revoked_at"])
        ApiKey.objects.filter(account=current, revoked_at__isnull=True).update(revoked_at=now)
        User.objects.filter(pk=current.user_id).update(is_active=False)
        audit_record(actor=actor, action="service_account.revoke", obj=current)
    return current


def authenticate_key(raw: str, *, method: str, path: str, now: datetime | None = None) -> tuple[Any, ApiKey] | None:
    """The service account's user for a valid key, with its roles and scopes set on it; None
    for an unknown or revoked key. Records the use (key, method, path: never a query string,
    which could carry a search term)."""
    now = now or timezone.now()
    key = (
        ApiKey.objects.select_related("account__user")
        .filter(key_hash=key_digest(raw), revoked_at__isnull=True, account__revoked_at__isnull=True)
        .first()
    )
    if key is None or not key.account.user.is_active:
        return None
    user = key.account.user
    remember_roles(user, [SCHEDULER])
    remember_scopes(user, key.scopes)
    if key.last_used_at is None or now - key.last_used_at >= timedelta(seconds=60):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    AuditEvent.objects.create(
        actor=user,
        actor_label=user.get_username(),
        action="api_key.use",
        object_type=ApiKey._meta.label_lower,
        object_id=str(key.pk),
        details={"method": method, "path": path[:200], "scopes": key.scopes},
    )
    return user, key


# --- calendar feed tokens ------------------------------------------------------------------


@transaction.atomic
def feed_token_issue(*, user: Any) -> str:
    """A new feed token for ``user`` (returned once); any earlier one stops working."""
    now = timezone.now()
    FeedToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
    raw = secrets.token_urlsafe(32)
    token = FeedToken.objects.create(user=user, token_hash=key_digest(raw))
    audit_record(actor=user, action="feed_token.issue", obj=token)
    return raw


@transaction.atomic
def feed_token_revoke(*, user: Any) -> int:
    """Revoke the user's feed token; their subscribed calendars stop updating."""
    revoked = FeedToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        audit_record(actor=user, action="feed_token.revoke", obj=user)
    return revoked


def feed_token_user(raw: str, *, now: datetime | None = None) -> Any | None:
    """The active user a feed token belongs to, with their roles; None for any other token."""
    if not raw or len(raw) > 100:
        return None
    now = now or timezone.now()
    token = (
        FeedToken.objects.select_related("user")
        .filter(token_hash=key_digest(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    if token.last_used_at is None or now - token.last_used_at >= timedelta(seconds=60):
        FeedToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
