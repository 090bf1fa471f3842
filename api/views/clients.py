"""Service accounts for system clients: an administrator creates one with a scoped key, issues
more keys (to rotate), and revokes a key or the whole account."""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.serializers import clients as s
from core.clients import IssuedKey, api_key_issue, api_key_revoke, service_account_create, service_account_revoke
from core.models import ApiKey, ServiceAccount
from scheduling import policy

ADMINS = set(policy.CONFIGURERS)


def issued(account: ServiceAccount, key: IssuedKey) -> dict[str, object]:
    return {
        "account": account.pk,
        "key_id": key.key.pk,
        "key": key.raw,
        "prefix": key.key.prefix,
        "scopes": key.key.scopes,
    }


class ServiceAccountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ServiceAccountSerializer
    roles = {"list": ADMINS, "retrieve": ADMINS, "create": ADMINS, "keys": ADMINS, "revoke": ADMINS}
    extra_error_statuses = {"create": (422,), "keys": (409, 422)}

    def get_queryset(self) -> QuerySet[ServiceAccount]:
        return ServiceAccount.objects.prefetch_related("keys").order_by("name")

    @extend_schema(request=s.ServiceAccountCreateInput, responses={201: s.IssuedKeySerializer})
    def create(self, request: Request) -> Response:
        data = s.ServiceAccountCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        account, key = service_account_create(
            actor=request.user, name=data.validated_data["name"], scopes=data.validated_data["scopes"]
        )
        return Response(
            issued(account, key),
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("service-account-detail", args=[account.pk])},
        )

    @extend_schema(request=s.ScopesInput, responses={201: s.IssuedKeySerializer})
    @action(detail=True, methods=["post"])
    def keys(self, request: Request, pk: str | None = None) -> Response:
        """Issue another key (to rotate one: issue, switch the client over, revoke the old)."""
        account = self.get_object()
        data = s.ScopesInput(data=request.data)
        data.is_valid(raise_exception=True)
        key = api_key_issue(actor=request.user, account=account, scopes=data.validated_data["scopes"])
        return Response(
            issued(account, key),
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("api-key-detail", args=[key.key.pk])},
        )

    @extend_schema(request=None, responses={200: s.ServiceAccountSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """Revoke the account and all its keys at once."""
        account = service_account_revoke(actor=request.user, account=self.get_object())
        return Response(s.ServiceAccountSerializer(self.get_queryset().get(pk=account.pk)).data)


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ApiKeySerializer
    roles = {"list": ADMINS, "retrieve": ADMINS, "revoke": ADMINS}
    filterset_fields = ["account"]

    def get_queryset(self) -> QuerySet[ApiKey]:
        return ApiKey.objects.order_by("-created_at", "-id")

    @extend_schema(request=None, responses={200: s.ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """Revoke this key at once; the account's other keys keep working."""
        key = api_key_revoke(actor=request.user, key=self.get_object())
        return Response(s.ApiKeySerializer(key).data)
