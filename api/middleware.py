"""Conditional reads of the REST API: every successful GET answers a strong ``ETag`` of its
body, and a request whose ``If-None-Match`` names it gets ``304 Not Modified`` and no body, so
a client polling a case or a list pays for the transfer only when something changed. The body
is what this caller may see, so the tag is too: two roles reading one booking get two tags."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response

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
