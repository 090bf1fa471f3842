"""Conditional reads of the REST API: every successful GET answers a strong ``ETag`` of its
body, and a request whose ``If-None-Match`` names it gets ``304 Not Modified`` and no body, so
a client polling a case or a list pays for the transfer only when something changed. The body
is what this caller may see, so the tag is too: two roles reading one booking get two tags."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import Resolver404, resolve
from django.utils.cache import get_conditional_response
from django.utils.http import http_date

from api.errors import PROBLEM_CONTENT_TYPE, problem_body

PREFIX = "/api/v1/"


def etag_of(content: bytes) -> str:
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


class ConditionalReadMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            request.method != "GET"
            or response.status_code != 200
            or not isinstance(response, HttpResponse)
            or not request.path.startswith(PREFIX)
            or response.has_header("ETag")
        ):
            return response
        response["ETag"] = etag_of(response.content)
        return get_conditional_response(request, etag=response["ETag"], response=response) or response


class CreatedLocationMiddleware:
    """Every ``201 Created`` of the REST API names what it made in ``Location``. A view that
    knows better (a key made under its account) sets it itself; otherwise it is the collection
    the request was posted to plus the new id, given only when that address is a real read of
    the record, never a guess that answers 404."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.status_code != 201 or response.has_header("Location") or not request.path.startswith(PREFIX):
            return response
        created = getattr(response, "data", None)
        if created is None and isinstance(response, HttpResponse) and "json" in response.get("Content-Type", ""):
            try:  # a replayed answer (Idempotency-Key) is stored as its body
                created = json.loads(response.content)
            except ValueError:
                created = None
        pk = created.get("id") if isinstance(created, dict) else None
        if isinstance(pk, int) and not isinstance(pk, bool):
            response["Location"] = detail_path(request.path, pk) or ""
            if not response["Location"]:
                del response["Location"]
        return response


def detail_path(collection: str, pk: int) -> str | None:
    candidate = f"{collection.rstrip('/')}/{pk}/"
    try:
        match = resolve(candidate)
    except Resolver404:
        return None
    actions = getattr(match.func, "actions", None) or {}
    return candidate if actions.get("get") == "retrieve" else None


class DeprecationMiddleware:
    """Operations on their way out say so on every answer: ``Deprecation`` (RFC 9745, the
    date it was deprecated), ``Sunset`` (RFC 8594, when it stops answering) and a ``Link`` to
    what replaces it. ``DEPRECATED`` lists them; docs/api-versioning.md gives the policy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        for notice in DEPRECATED:
            if notice.applies(request):
                response["Deprecation"] = f"@{int(notice.deprecated_at.timestamp())}"
                response["Sunset"] = http_date(notice.sunset_at.timestamp())
                if notice.successor:
                    response["Link"] = f'<{notice.successor}>; rel="successor-version"'
                break
        return response


@dataclass(frozen=True)
class Deprecated:
    method: str
    path: str  # a regular expression over the request path
    deprecated_at: datetime
    sunset_at: datetime
    successor: str = ""

    def applies(self, request: HttpRequest) -> bool:
        return request.method == self.method and re.fullmatch(self.path, request.path) is not None


# What is deprecated now (nothing yet); an entry here is also a line in docs/api-changelog.md.
DEPRECATED: list[Deprecated] = []


class QueryParametersMiddleware:
    """A query parameter of the REST API is given once and with a value. Given twice, a server
    would have to pick one (and a filter silently ignoring the other returns the wrong rows);
    given empty, a filter would be dropped and every row returned. Both are a 400 naming it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path.startswith(PREFIX):
            errors = [
                {"field": name, "code": "repeated", "message": "Give this parameter once."}
                for name in request.GET
                if len(request.GET.getlist(name)) > 1
            ] + [
                {"field": name, "code": "blank", "message": "Give this parameter a value, or leave it out."}
                for name in request.GET
                if len(request.GET.getlist(name)) == 1 and request.GET[name] == ""
            ]
            if errors:
                body = problem_body(400, "invalid", f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
                return JsonResponse(body, status=400, content_type=PROBLEM_CONTENT_TYPE)
        return self.get_response(request)
