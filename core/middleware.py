"""Request-wide middleware: request ids and the access log, security headers, body limits,
database deadlines, and the sign-in throttle of the browser login pages."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from core import logs, throttle
from core.dbtimeout import request_deadlines
from core.net import client_ip

access_log = logging.getLogger("access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
Handler = Callable[[HttpRequest], HttpResponseBase]


def _problem(status: int, code: str, title: str, detail: str, headers: dict[str, str] | None = None) -> HttpResponse:
    # The API's one error shape (api.errors.problem): errors is a list of {field, code, message}.
    body = {
        "type": f"/api/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "errors": [{"field": None, "code": code, "message": detail}],
    }
    response = HttpResponse(json.dumps(body), status=status, content_type="application/problem+json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class RequestContextMiddleware:
    """Gives each request an id (a proxy's X-Request-ID when well formed), returns it in the
    response, and writes one access line: method, path without the query string (it can
    carry an MRN), status, duration, user id and client address."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token_rid = logs.request_id.set(rid)
        token_uid = logs.user_id.set("-")
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            # Set by whichever authentication ran (session or bearer token); reading request.user
            # here would cost a query outside the request's database deadline.
            uid = logs.user_id.get()
            response["X-Request-ID"] = rid
            access_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "event": "request",
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "user_id": uid,
                    "client": client_ip(request),
                },
            )
            return response
        finally:
            logs.request_id.reset(token_rid)
            logs.user_id.reset(token_uid)


class SessionUserMiddleware:
    """Puts a signed-in browser user's id on the request's log lines, from the session itself
    (no user query). Bearer tokens do the same in their authentication class."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            uid = request.session.get(SESSION_KEY)
            if uid is not None:
                logs.user_id.set(str(uid))
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """A content security policy on every page, and no caching of anything dynamic: API
    answers and pages carry patient data, and a shared or back-button cache must not keep it."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        if not request.path.startswith(f"/{settings.STATIC_URL.strip('/')}/"):
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response


class BodyLimitMiddleware:
    """A body over the limit is a 413 problem, decided from Content-Length before reading it;
    one that turns out too large while being read (no length given) is a 413 as well."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _problem(400, "malformed", "Invalid request", "The Content-Length header is not a number.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return self._too_large(limit)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponseBase | None:
        if isinstance(exception, RequestDataTooBig):
            return self._too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        return None

    @staticmethod
    def _too_large(limit: int | None) -> HttpResponse:
        response = _problem(
            413, "payload_too_large", "Payload too large", f"The request body is larger than {limit} bytes."
        )
        # The rest of an oversized body is not read; the connection cannot be reused.
        response["Connection"] = "close"
        return response


class DatabaseDeadlineMiddleware:
    """Every database round trip of a web request gets DB_QUERY_TIMEOUT_SECONDS."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        with request_deadlines(settings.DB_QUERY_TIMEOUT_SECONDS):
            return self.get_response(request)


class LoginThrottleMiddleware:
    """Password sign-ins through browser pages: refused while the client address has too many
    recent failures or the username is locked (failures are counted by core.apps from Django's
    login signal, so every sign-in path shares the counts)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method == "POST" and request.path in settings.LOGIN_THROTTLE_PATHS:
            wait = throttle.sign_in_wait(str(request.POST.get("username", ""))[:150], client_ip(request))
            if wait:
                response = HttpResponse(
                    "Too many sign-in attempts; wait a few minutes and try again.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(wait)
                return response
        return self.get_response(request)
