"""OpenAPI: every operation documents the error responses it can give."""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from api.errors import PROBLEM_CONTENT_TYPE, ProblemSerializer
from api.idempotency import HEADER as IDEMPOTENCY_HEADER

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
        return responses

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
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
