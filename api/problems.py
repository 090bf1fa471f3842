"""The kinds of problem the API answers, each described on its own page at its ``type`` URI.

Every error body's ``type`` is ``/api/problems/<code>``; a code without a page of its own
points at its status's general page, so no ``type`` a client follows answers 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.safestring import mark_safe

BASE = "/api/problems/"


@dataclass(frozen=True)
class ProblemKind:
    code: str
    status: int
    title: str
    description: str
    what_to_do: str


KINDS = [
    ProblemKind(
        "invalid",
        400,
        "The request breaks the schema",
        "A value is missing, of the wrong type, out of the range or format the schema gives, or a query "
        "parameter is unknown, repeated or empty. Each item of `errors` names the field and why.",
        "Correct the fields named in `errors` and send the request again.",
    ),
    ProblemKind(
        "malformed",
        400,
        "The body could not be read",
        "The body is not valid JSON (or not of the content type it claims).",
        "Send a JSON object with `Content-Type: application/json`.",
    ),
    ProblemKind(
        "invalid_idempotency_key",
        400,
        "The Idempotency-Key header is not valid",
        "An Idempotency-Key is 1 to 255 printable ASCII characters.",
        "Send a key such as a UUID.",
    ),
    ProblemKind(
        "not_authenticated",
        401,
        "Not signed in",
        "The request carries no credentials, or a token that has expired or was revoked.",
        "Get a token at `POST /api/v1/auth/token/` and send it as `Authorization: Bearer <token>`.",
    ),
    ProblemKind(
        "authentication_failed",
        401,
        "The credentials were refused",
        "The token or API key is unknown, expired, idle too long or revoked.",
        "Sign in again, or ask an administrator for a new key.",
    ),
    ProblemKind(
        "invalid_credentials",
        401,
        "Wrong username or password",
        "The username or password given to `POST /api/v1/auth/token/` is wrong.",
        "Check them; after ten failures an address is refused for a while (429).",
    ),
    ProblemKind(
        "permission_denied",
        403,
        "Not allowed",
        "Your role, or your key's scopes, do not allow this action on this record.",
        "Ask someone whose role allows it, or an administrator for the scope.",
    ),
    ProblemKind(
        "override_not_permitted",
        403,
        "The override needs another role",
        "The request asks to override a rule (e.g. an anticoagulant hold) that only a physician or an "
        "administrator may override.",
        "Ask a physician to book it, or book a date the rule allows.",
    ),
    ProblemKind(
        "not_found",
        404,
        "Not found",
        "No record with this id is visible to you, or the address does not exist.",
        "Check the id; records you may not see answer 404 as if absent.",
    ),
    ProblemKind(
        "method_not_allowed",
        405,
        "Method not allowed",
        "The operation does not exist for this method. The `Allow` header lists the methods it has; a "
        "booking, for instance, changes only through its actions (`reschedule`, `cancel`, ...).",
        "Use a method from the `Allow` header.",
    ),
    ProblemKind(
        "not_acceptable",
        406,
        "No answer in the format asked for",
        "The `Accept` header names no format this operation answers in.",
        "Accept `application/json` (and `application/problem+json` for errors).",
    ),
    ProblemKind(
        "payload_too_large",
        413,
        "The body is too large",
        "The request body is larger than the server reads.",
        "Send less at once: a list is written one record per request.",
    ),
    ProblemKind(
        "unsupported_media_type",
        415,
        "Body in an unsupported format",
        "The `Content-Type` of the body is not one this operation reads.",
        "Send `application/json`.",
    ),
    ProblemKind(
        "conflict",
        409,
        "Conflicts with stored data",
        "The change conflicts with data already stored.",
        "Read the record again and retry with the current state.",
    ),
    ProblemKind(
        "not_unique",
        409,
        "Already exists",
        "A value that must be unique (a code, a name, an MRN) is already taken. `errors` names the fields.",
        "Use another value, or work with the record that has it.",
    ),
    ProblemKind(
        "in_use",
        409,
        "Still in use",
        "Other records still refer to this one, so it cannot be deleted.",
        "Deactivate it instead (`is_active: false`) or remove what refers to it first.",
    ),
    ProblemKind(
        "slot_unavailable",
        409,
        "The time is taken",
        "A resource or the patient is already held at that time. `conflicts` lists each clash; "
        "`alternatives` offers nearby starts that are free.",
        "Pick one of `alternatives`, or search availability again.",
    ),
    ProblemKind(
        "invalid_transition",
        409,
        "Not possible in the case's current state",
        "The case (or plan) is in a state that does not allow this step, e.g. checking in a cancelled case. "
        "The item in `errors` carries the current state in `extra`.",
        "Read the case again; follow the workflow's order.",
    ),
    ProblemKind(
        "readiness_not_met",
        409,
        "The patient is not ready",
        "The readiness checklist (consent, escort, fasting, anticoagulant hold, ...) is not complete. "
        "Each item of `errors` is one outstanding check.",
        "Complete the items and try again.",
    ),
    ProblemKind(
        "possible_duplicate",
        409,
        "Possibly the same patient",
        "A patient with the same name and birth date, or the same MRN, exists. The item in `errors` lists "
        "the matches in `extra`.",
        "Use the existing patient, or send `duplicate_ok: true` if they are truly different.",
    ),
    ProblemKind(
        "plan_stale",
        409,
        "The plan is out of date",
        "A case the plan moves changed after the plan was made, or its patient is now due.",
        "Ask for a new plan.",
    ),
    ProblemKind(
        "idempotency_key_in_flight",
        409,
        "The same request is still running",
        "A request with this Idempotency-Key has not finished yet.",
        "Wait a moment and retry with the same key; it will replay the first answer.",
    ),
    ProblemKind(
        "scheduling_error",
        409,
        "Refused by the scheduling rules",
        "The change is not possible as asked.",
        "Read `detail` and `errors`.",
    ),
    ProblemKind(
        "unknown_reference",
        422,
        "Refers to something that does not exist",
        "The request is well formed, but an id or code in it names no record you may use. `errors` names the fields.",
        "Look the ids up (e.g. `GET /api/v1/patients/`) and send existing ones.",
    ),
    ProblemKind(
        "rule_violated",
        422,
        "Refused by a rule across fields",
        "The request is well formed, but its fields together break a rule of the record: e.g. a downtime "
        "names both a room and equipment, a sedation default is not among the allowed levels, only nurses "
        "give sedation. Each item of `errors` says which.",
        "Change the fields the items name.",
    ),
    ProblemKind(
        "out_of_range",
        422,
        "A date outside the clinic's years",
        "A date or time is well formed but outside the years the clinic schedules (2000 to 2200; birth "
        "dates from 1900).",
        "Check the year.",
    ),
    ProblemKind(
        "invalid_cursor",
        422,
        "Not a cursor of this walk",
        "A `cursor` must be taken from a `next` link as given; with `updated_since` the pages are followed "
        "by cursor, not by `page`.",
        "Follow the `next` link of the page before, or start the walk again from `updated_since`.",
    ),
    ProblemKind(
        "booking_invalid",
        422,
        "Refused by the booking rules",
        "The request is well formed but breaks a rule of the rulebook: levels or sedation the procedure "
        "does not allow, a physician without the privilege, a room without the capability, downtime, "
        "an anticoagulant hold. Each item of `errors` is one rule, with its `code`.",
        "Change what the items name; `GET /api/v1/availability/reasons/` explains a given start.",
    ),
    ProblemKind(
        "idempotency_key_reused",
        422,
        "The Idempotency-Key was used for another request",
        "This key was used before with a different method, path or body.",
        "Use a new key for a new request.",
    ),
    ProblemKind(
        "throttled",
        429,
        "Too many requests",
        "Too many requests (or failed sign-ins) from you in a short time.",
        "Wait the seconds given in `Retry-After`.",
    ),
    ProblemKind(
        "server_error",
        500,
        "Server error",
        "Something failed on our side; it has been logged.",
        "Retry later; if it persists, tell the clinic's administrator the time of the request.",
    ),
    ProblemKind(
        "unavailable",
        503,
        "Service unavailable",
        "The database is not answering for a moment.",
        "Retry after the seconds given in `Retry-After`.",
    ),
]
BY_CODE = {kind.code: kind for kind in KINDS}
# A code with no page of its own falls back to its status's general page.
BY_STATUS = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unknown_reference",
    429: "throttled",
    500: "server_error",
    503: "unavailable",
}


def problem_type(code: str, status: int) -> str:
    if code not in BY_CODE:
        code = BY_STATUS.get(status, "server_error" if status >= 500 else "invalid")
    return f"{BASE}{code}"


def with_code(text: str) -> str:
    """The words of a kind, escaped, with its `names` set as code."""
    return mark_safe(re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text)))  # noqa: S308 - escaped first


def problem_index(request: HttpRequest) -> HttpResponse:
    kinds = sorted(KINDS, key=lambda k: (k.status, k.code))
    return render(request, "api/problems.html", {"kinds": kinds})


def problem_page(request: HttpRequest, code: str) -> HttpResponse:
    kind = BY_CODE.get(code)
    if kind is None:
        raise Http404("No such kind of problem.")
    context = {"kind": kind, "description": with_code(kind.description), "what_to_do": with_code(kind.what_to_do)}
    return render(request, "api/problem.html", context)
