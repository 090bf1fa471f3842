"""Service accounts and their API keys, as an administrator manages them."""

from __future__ import annotations

from rest_framework import serializers

from api.serializers.common import ClinicModelSerializer
from core.models import ApiKey, Scope, ServiceAccount


class ApiKeySerializer(ClinicModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ServiceAccountSerializer(ClinicModelSerializer):
    keys = ApiKeySerializer(many=True, read_only=True)

    class Meta:
        model = ServiceAccount
        fields = ["id", "name", "created_at", "revoked_at", "keys"]
        read_only_fields = fields


class ScopesInput(serializers.Serializer):
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices), min_length=1, max_length=len(Scope.choices)
    )


class ServiceAccountCreateInput(ScopesInput):
    name = serializers.CharField(max_length=80)


class IssuedKeySerializer(serializers.Serializer):
    """The key appears here once; it is not stored and cannot be shown again."""

    account = serializers.IntegerField()
    key_id = serializers.IntegerField()
    key = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
