"""Bearer tokens: issue one for a username and password (throttled), revoke the current one."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from api import serializers as s
from api.authentication import issue_token
from api.errors import problem
from api.models import ApiToken
from core.audit import audit_record


class TokenView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=s.TokenInput, responses={200: s.TokenOutput}, auth=[])
    def post(self, request: Request) -> Response:
        data = s.TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, username=data.validated_data["username"], password=data.validated_data["password"])
        if user is None or not user.is_active:
            return problem(401, "invalid_credentials", "The username or password is wrong.")
        raw, token = issue_token(user)
        audit_record(actor=user, action="token.issue", obj=token)
        return Response({"token": raw, "expires_at": token.expires_at})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            return problem(401, "not_authenticated", "Authentication credentials were not provided.")
        if isinstance(request.auth, ApiToken):
            request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_permissions(self) -> list[Any]:
        return [AllowAny()]
