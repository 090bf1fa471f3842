"""Throttles password logins through the browser (the admin's login form) per client address."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse


class LoginThrottleMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path in settings.LOGIN_THROTTLE_PATHS:
            key = f"login-throttle:{request.META.get('REMOTE_ADDR', '')}"
            cache.add(key, 0, timeout=settings.LOGIN_THROTTLE_WINDOW_SECONDS)
            attempts = cache.incr(key)
            if attempts > settings.LOGIN_THROTTLE_ATTEMPTS:
                response = HttpResponse("Too many login attempts; wait a minute and try again.", status=429)
                response["Retry-After"] = str(settings.LOGIN_THROTTLE_WINDOW_SECONDS)
                return response
        return self.get_response(request)
