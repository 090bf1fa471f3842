"""Bearer tokens: issue one for a username and password (throttled), revoke the current one."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.authentication import issue_token
from api.errors import problem
from api.models import ApiToken
from api.serializers import tokens as s
from core import throttle
from core.audit import audit_record
from core.net import client_ip


def _too_many(seconds: int, detail: str) -> Response:
    return problem(429, "throttled", detail, headers={"Retry-After": str(max(1, seconds))})


class TokenView(APIView):
    permission_classes = [AllowAny]
    extra_error_statuses = {"post": (429,)}

    @extend_schema(request=s.TokenInput, responses={200: s.TokenOutput}, auth=[])
    def post(self, request: Request) -> Response:
        """Sign in with a username and password for a bearer token: send it as
        `Authorization: Bearer <token>`. It lasts `API_TOKEN_HOURS` (12) and stops after an
        hour unused. Ten failures from one address, or for one username, are refused for a
        while (429 with `Retry-After`)."""
        address = client_ip(request)
        wait = throttle.address_wait(address)
        if wait:
            return _too_many(wait, "Too many failed sign-ins from this address; wait a minute and try again.")
        data = s.TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        locked = throttle.lockout_remaining(username)
        if locked:
            # Said the same way whether or not the account exists.
            return _too_many(locked, "Too many failed sign-ins for this username; it is locked for a while.")
        user = authenticate(request, username=username, password=data.validated_data["password"])
        if user is None or not user.is_active:
            return problem(401, "invalid_credentials", "The username or password is wrong.")
        throttle.record_success(username)
        raw, token = issue_token(user)
        audit_record(actor=user, action="token.issue", obj=token)
        return Response(s.TokenOutput({"token": raw, "expires_at": token.expires_at}).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        """Sign out: the token this request carries stops working at once."""
        if not request.user.is_authenticated:
            return problem(401, "not_authenticated", "Authentication credentials were not provided.")
        if isinstance(request.auth, ApiToken):
            request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_permissions(self) -> list[Any]:
        return [AllowAny()]
