"""OpenAPI: every operation documents the error responses it can give."""

from __future__ import annotations

import inspect
import re
from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from api import middleware
from api.errors import PROBLEM_CONTENT_TYPE, ProblemSerializer
from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.middleware import PREFIX as CONDITIONAL_PREFIX
from core.idempotency import KEY_PATTERN, MAX_KEY_LENGTH
from scheduling.policy import PATIENT_FIELDS_BY_ROLE

# 422: a well-formed request naming what does not exist, or that a rule refuses; 409 on a
# write: a value that must be unique is taken, or the record changed state.
COMMON_ERRORS = (400, 401, 403, 404, 405, 406, 415, 422, 429, 503)
WRITE_ERRORS = (409,)


# Docstrings of shared base classes say how a view is built, not what an operation does; an
# operation documented only by one of them gets a description written from what it is.
SHARED_DOCS = frozenset(
    {
        "CRUD whose writes go through the audited generic services.",
        "For views that catch errors themselves (idempotent actions): render as the API does.",
    }
)
ACTION_WORDS = {
    "list": "Lists {plural} you may see, a page at a time (`page`, `page_size`; at most 200 a page).",
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

    def is_deprecated(self) -> bool:
        """An operation listed in api.middleware.DEPRECATED says so in the schema too."""
        sample = re.sub(r"\{[^}]+\}", "1", self.path)
        return any(
            notice.method == self.method and re.fullmatch(notice.path, sample) for notice in middleware.DEPRECATED
        ) or bool(super().is_deprecated())

    def _with_roles(self, text: str) -> str:
        roles = getattr(self.view, "roles", {}).get(self._action_name())
        if not roles:
            return text
        return f"{text}\n\nAllowed to: {', '.join(sorted(roles))}."

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        extra = set(COMMON_ERRORS) | set(getattr(self.view, "extra_error_statuses", {}).get(self._action_name(), ()))
        if self.method != "GET":
            extra |= set(WRITE_ERRORS)
        for status in sorted(extra):
            key = str(status)
            if key not in responses:
                responses[key] = self._get_response_for_code(
                    OpenApiResponse(ProblemSerializer, description=f"Problem details ({status})"),
                    key,
                    media_types=[PROBLEM_CONTENT_TYPE],
                    direction=direction,
                )
        # A request line longer than the HTTP server reads never reaches the application: the
        # server (gunicorn, 8,190 bytes) answers 414 itself, as a short HTML page.
        responses["414"] = {
            "description": "URI too long: the request line is over 8,190 bytes. Answered by the HTTP server.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
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
                    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_PATTERN},
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


# What every text the API reads holds to: no NUL character (the databases cannot store one),
# and, where a value is required, something besides spaces (text is read trimmed).
ANY_TEXT = r"^[^\x00]*$"
SOME_TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"


def query_strings_need_a_value(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Say in the schema what the server holds text to: a query parameter given empty is
    refused (api.middleware.QueryParametersMiddleware), so every text parameter has at least
    one character; no text has a NUL; required text is not only spaces."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = parameter.get("schema", {})
                if parameter.get("in") == "query" and schema.get("type") == "string" and "enum" not in schema:
                    schema["minLength"] = max(1, schema.get("minLength", 0))
                    _text_pattern(schema)
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _text_patterns(component)
    return result


def _text_patterns(schema: Any) -> None:
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string":
        _text_pattern(schema)
    for key in ("properties",):
        for child in schema.get(key, {}).values():
            _text_patterns(child)
    for key in ("items", "additionalProperties"):
        _text_patterns(schema.get(key))
    for key in ("allOf", "oneOf", "anyOf"):
        for child in schema.get(key, []):
            _text_patterns(child)


def _text_pattern(schema: dict[str, Any]) -> None:
    if "enum" in schema or "pattern" in schema or "format" in schema:
        return
    schema["pattern"] = SOME_TEXT if schema.get("minLength", 0) >= 1 else ANY_TEXT


def links_from_what_was_made(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """OpenAPI links from each create to what may be done with what it made: a booking's
    201 links to reading it and to each of its actions (reschedule, cancel, check in, ...),
    a room's to reading, changing and deleting it. The id is taken from the created body."""
    paths = result.get("paths", {})
    schemas = result.get("components", {}).get("schemas", {})
    for path, item in paths.items():
        created = item.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        body = created.get("content", {}).get("application/json", {}).get("schema", {})
        properties = schemas.get(body.get("$ref", "").rsplit("/", 1)[-1], {}).get("properties", {})
        id_field = "id" if "id" in properties else "account" if "account" in properties else None
        if id_field is None:
            continue
        links: dict[str, Any] = {}
        for other, other_item in paths.items():
            if not other.startswith(f"{path}{{id}}/"):
                continue
            for method, operation in other_item.items():
                if method in ("get", "post", "put", "patch", "delete") and "operationId" in operation:
                    links[operation["operationId"]] = {
                        "operationId": operation["operationId"],
                        "parameters": {"id": f"$response.body#/{id_field}"},
                        "description": f"{method.upper()} {other} for what this made.",
                    }
        if links:
            created["links"] = links
    return result


def patient_fields_by_role(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """A patient is answered with the fields the caller's role may see (the minimum necessary):
    the schema lists them all, and requires only those every role sees."""
    patient = result.get("components", {}).get("schemas", {}).get("Patient")
    if patient is not None:
        always = set.intersection(*(set(fields) for fields in PATIENT_FIELDS_BY_ROLE.values())) | {"updated_at"}
        patient["required"] = sorted(name for name in patient.get("properties", {}) if name in always)
        patient["description"] = (
            "A patient, with the fields your role may see: schedulers, nurses and administrators see them "
            "all; a physician no phone; a tech the name, MRN, birth date and allergies; a key without the "
            "patients scope the id only."
        )
    return result
