"""Signing in for a bearer token."""

from __future__ import annotations

from rest_framework import serializers

from api.fields import AwareDateTimeField


class TokenInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
    expires_at = AwareDateTimeField(help_text="When the token stops working (it also stops after an hour unused).")
