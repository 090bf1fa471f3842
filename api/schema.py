"""OpenAPI: every operation documents the error responses it can give."""

from __future__ import annotations

import inspect
from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from api.errors import PROBLEM_CONTENT_TYPE, ProblemSerializer
from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.middleware import PREFIX as CONDITIONAL_PREFIX

COMMON_ERRORS = (400, 401, 403, 404, 405, 406, 415, 429, 503)


# Docstrings of shared base classes say how a view is built, not what an operation does; an
# operation documented only by one of them gets a description written from what it is.
SHARED_DOCS = frozenset(
    {
        "CRUD whose writes go through the audited generic services.",
        "For views that catch errors themselves (idempotent actions): render as the API does.",
    }
)
ACTION_WORDS = {
    "list": "Lists {plural} you may see, a page at a time (`page`, `page_size`; at most 100 a page).",
    "retrieve": "Reads one {singular} by its id (404 if there is none you may see).",
    "create": "Creates {a} {singular}. Answers 201 with it, and its address in `Location`.",
    "partial_update": "Changes the fields of {a} {singular} that the body gives; the others keep their values.",
    "update": "Replaces {a} {singular} with the body.",
    "destroy": "Deletes {a} {singular} (409 `in_use` while other records still refer to it).",
}


def _ours(obj: Any) -> bool:
    return str(getattr(obj, "__module__", "")).split(".")[0] in ("api", "interop")


class ProblemAutoSchema(AutoSchema):
    def get_description(self) -> str:  # type: ignore[override]
        """The operation's own docstring; else what its action does to its kind of record,
        followed by what the view's own docstring says of them all; and who may call it."""
        action = self._action_name()
        handler = getattr(self.view, action, None) or getattr(self.view, self.method.lower(), None)
        own = inspect.getdoc(handler) if handler is not None and _ours(handler) else None
        if own:
            return self._with_roles(own)
        view_doc = inspect.cleandoc(type(self.view).__dict__.get("__doc__") or "")
        lead = view_doc if view_doc not in SHARED_DOCS and _ours(type(self.view)) else ""
        model = getattr(getattr(self.view, "queryset", None), "model", None) or getattr(
            getattr(getattr(self.view, "serializer_class", None), "Meta", None), "model", None
        )
        sentence = ""
        if action in ACTION_WORDS or not lead:
            singular = str(model._meta.verbose_name) if model is not None else "record"
            plural = str(model._meta.verbose_name_plural) if model is not None else "records"
            template = ACTION_WORDS.get(action, f"{action.replace('_', ' ').capitalize()} {{a}} {{singular}}.")
            a = "an" if singular[:1].lower() in "aeiou" else "a"
            sentence = template.format(singular=singular, plural=plural, a=a)
        return self._with_roles("\n\n".join(part for part in (sentence, lead) if part))

    def _with_roles(self, text: str) -> str:
        roles = getattr(self.view, "roles", {}).get(self._action_name())
        if not roles:
            return text
        return f"{text}\n\nAllowed to: {', '.join(sorted(roles))}."

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
        if "201" in responses:
            responses["201"].setdefault("headers", {})["Location"] = {
                "description": "The address of what was created; GET it to read it.",
                "schema": {"type": "string", "format": "uri-reference"},
                "required": True,
            }
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
