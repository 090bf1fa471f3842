"""OpenAPI: every operation documents the error responses it can give."""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from api.errors import PROBLEM_CONTENT_TYPE, ProblemSerializer
from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.middleware import PREFIX as CONDITIONAL_PREFIX

COMMON_ERRORS = (400, 401, 403, 404, 405, 406, 415, 429, 503)


class ProblemAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        extra = set(COMMON_ERRORS) | set(getattr(self.view, "extra_error_statuses", {}).get(self._action_name(), ()))
        for status in sorted(extra):
            key = str(status)
            if key not in responses:
                responses[key] = self._get_response_for_code(
                    OpenApiResponse(ProblemSerializer, description=f"Problem details ({status})"),
                    key,
                    media_types=[PROBLEM_CONTENT_TYPE],
                    direction=direction,
                )
        if self._conditional() and "200" in responses:
            responses["304"] = {
                "description": "Not modified: the ETag sent in If-None-Match is still current; no body.",
                "headers": self._get_response_headers_for_code("304", direction),
            }
        return responses

    def _conditional(self) -> bool:
        """GETs of the REST API answer an ETag and honour If-None-Match (api.middleware)."""
        return self.method == "GET" and self.path.startswith(CONDITIONAL_PREFIX)

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self._conditional():
            parameters += [
                OpenApiParameter(
                    "If-None-Match",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    required=False,
                    description="The ETag of the copy you hold: 304 with no body if it is still current.",
                ),
                OpenApiParameter(
                    "ETag",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    response=[200, 304],
                    description="A tag of this answer as you may see it; send it back in If-None-Match.",
                ),
            ]
        if self._action_name() in getattr(self.view, "idempotent_actions", ()):
            parameters.append(
                OpenApiParameter(
                    IDEMPOTENCY_HEADER,
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    required=False,
                    description=(
                        "A key of your choosing (e.g. a UUID) that makes a retry safe: the same key with the "
                        "same body replays the first answer instead of acting twice; with another body it "
                        "is refused (422). Kept for 24 hours per user."
                    ),
                )
            )
        return parameters

    def _action_name(self) -> str:
        return getattr(self.view, "action", None) or self.method.lower()
