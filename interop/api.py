"""Webhook subscriptions over REST (administrators): create, list, change, delete; each one's
delivery log; redeliver one delivery by hand. Mounted beside the REST API at /api/v1/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.audit import audit_record
from core.dates import to_local
from core.roles import PEOPLE_ONLY
from interop.delivery import delivery_redeliver, delivery_skip, webhook_rotate_secret
from interop.models import Delivery, DeliveryAttempt, WebhookSubscription, http_url
from outbox.registry import event_kinds
from rooms.zones import clinic_zone
from scheduling import policy

ADMINS = set(policy.CONFIGURERS)
# Webhooks are configured by a person: no key's scope reaches them.
PEOPLE = {
    name: PEOPLE_ONLY
    for name in ("list", "retrieve", "create", "update", "partial_update", "destroy", "redeliver", "skip")
}


class LocalDateTimeField(serializers.DateTimeField):
    """An instant with the clinic's offset, as every answer of the API gives it."""

    def to_representation(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return to_local(value, clinic_zone()).isoformat()
        return super().to_representation(value)


class LocalTimesSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping}
    serializer_field_mapping[models.DateTimeField] = LocalDateTimeField


@extend_schema_field({"type": "string", "format": "uri", "pattern": r"^https?://\S+$", "maxLength": 500})
class WebAddressField(serializers.CharField):
    """An http(s) address. One of that form that the model's rule still refuses (no host a
    request could reach) is a rule (422), not the schema."""

    def to_internal_value(self, data: Any) -> str:
        value = str(super().to_internal_value(data))
        if not value.startswith(("http://", "https://")) or any(char.isspace() for char in value):
            raise serializers.ValidationError("Give an http:// or https:// address.", code="invalid")
        try:
            http_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages, code="rule") from exc
        return value


class WebhookSerializer(LocalTimesSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=event_kinds()),
        required=False,
        max_length=len(event_kinds()),
        help_text="The kinds of change to receive; empty or left out: every kind.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["id", "name", "url", "events", "is_active", "secret", "previous_secret_until", "created_at"]
        read_only_fields = ["id", "secret", "previous_secret_until", "created_at"]

    url = WebAddressField(
        max_length=500, help_text="Where events are POSTed: https://, or http:// inside your own network."
    )


class AttemptSerializer(LocalTimesSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["at", "outcome", "code", "detail", "duration_ms"]


class DeliverySerializer(LocalTimesSerializer):
    event_id = serializers.IntegerField(read_only=True)
    event = serializers.CharField(source="event.kind", read_only=True)
    log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event_id",
            "event",
            "status",
            "attempts",
            "next_attempt_at",
            "delivered_at",
            "last_error",
            "log",
        ]
        read_only_fields = fields


def _role_map(*names: str) -> dict[str, set[str]]:
    return {name: ADMINS for name in names}


class WebhookViewSet(viewsets.ModelViewSet):
    serializer_class = WebhookSerializer
    roles = _role_map(
        "list", "retrieve", "create", "update", "partial_update", "destroy", "deliveries", "rotate_secret"
    )
    scopes = {**PEOPLE, "deliveries": PEOPLE_ONLY, "rotate_secret": PEOPLE_ONLY}
    filterset_fields = ["is_active"]
    action_query_params = {"deliveries": {"is_active", "page", "page_size"}}

    def get_success_headers(self, data: Any) -> dict[str, str]:
        # REST framework would name the body's `url` (the subscriber's own address) as the
        # Location; the Location of a 201 is the subscription's own read, set beside the API.
        return {"Location": reverse("webhook-detail", args=[data["id"]])} if "id" in data else {}

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        return WebhookSubscription.objects.order_by("name", "id")

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        hook = serializer.save(created_by=self.request.user)
        audit_record(actor=self.request.user, action="webhook.create", obj=hook, details={"events": hook.events})

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        hook = serializer.save()
        audit_record(actor=self.request.user, action="webhook.update", obj=hook, details={"events": hook.events})

    def perform_destroy(self, instance: Any) -> None:
        audit_record(actor=self.request.user, action="webhook.delete", obj=instance)
        instance.delete()

    @extend_schema(responses={200: DeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The delivery log, newest first: each delivery with every attempt."""
        hook = self.get_object()
        rows = Delivery.objects.filter(webhook=hook).select_related("event").prefetch_related("log").order_by("-id")
        page = self.paginate_queryset(rows)
        data = DeliverySerializer(page if page is not None else rows, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    @extend_schema(request=None, responses={200: WebhookSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new signing secret. The old one keeps signing beside it (a second ``v1=`` in the
        signature header) until ``previous_secret_until``, so the receiver can switch over."""
        hook = webhook_rotate_secret(actor=request.user, hook=self.get_object())
        return Response(WebhookSerializer(hook).data)


class DeliveryViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeliverySerializer
    roles = _role_map("retrieve", "redeliver", "skip")
    scopes = PEOPLE
    extra_error_statuses = {"redeliver": (409,), "skip": (409,)}

    def get_queryset(self) -> QuerySet[Delivery]:
        return Delivery.objects.select_related("event").prefetch_related("log").order_by("id")

    @extend_schema(request=None, responses={200: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        """Send it again at the next run (same event id, so the receiver can tell a repeat)."""
        delivery = delivery_redeliver(actor=request.user, delivery=self.get_object())
        return Response(DeliverySerializer(self.get_queryset().get(pk=delivery.pk)).data)

    @extend_schema(request=None, responses={200: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def skip(self, request: Request, pk: str | None = None) -> Response:
        """Give up on a parked delivery so the case's later messages go to that destination."""
        delivery = delivery_skip(actor=request.user, delivery=self.get_object())
        return Response(DeliverySerializer(self.get_queryset().get(pk=delivery.pk)).data)
