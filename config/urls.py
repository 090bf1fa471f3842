from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults

from api.problems import problem_type
from ops import views as ops

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("interop.urls")),
    path("", include("web.urls")),
]


def _problem(status: int, code: str, title: str, detail: str) -> JsonResponse:
    body = {
        "type": problem_type(code, status),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "errors": [{"field": None, "code": code, "message": detail}],
    }
    return JsonResponse(body, status=status, content_type="application/problem+json")


def _outcome(status: int, code: str, diagnostics: str) -> JsonResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return JsonResponse(body, status=status, content_type="application/fhir+json")


def not_found(request: HttpRequest, exception: Any) -> HttpResponse:
    if request.path.startswith("/fhir/"):
        return _outcome(404, "not-found", "No such address in the FHIR endpoint.")
    if request.path.startswith("/api/"):
        return _problem(404, "not_found", "Not found", "No such address in the API.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/fhir/"):
        return _outcome(500, "exception", "Something failed on our side; it has been logged.")
    if request.path.startswith("/api/"):
        return _problem(500, "server_error", "Server error", "Something failed on our side; it has been logged.")
    return defaults.server_error(request)


handler404 = not_found
handler500 = server_error
