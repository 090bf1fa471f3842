"""The case order a referral brings: the levels by name, the side, the indication, who referred
and under which order and prior authorisation. Levels by name decide the level count; the CPT
codes follow from the procedure and the levels. Every face (REST, pages, standards) reads and
checks an order through here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models

from core.errors import BookingInvalid, Problem

# Spinal order, top to bottom: cervical, thoracic, lumbar, sacral segments.
SPINAL_LEVELS: tuple[str, ...] = (
    *(f"C{n}" for n in range(1, 8)),
    *(f"T{n}" for n in range(1, 13)),
    *(f"L{n}" for n in range(1, 6)),
    *(f"S{n}" for n in range(1, 6)),
)
LEVEL_RANK = {name: rank for rank, name in enumerate(SPINAL_LEVELS)}
# ICD-10-CM: a letter, two characters, then up to four after the dot (e.g. M80.08XA).
ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
MAX_LEVEL_NAMES = 12


class Side(models.TextChoices):
    NONE = "", "Not applicable"
    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    BILATERAL = "bilateral", "Bilateral"
    MIDLINE = "midline", "Midline"


class PriorAuthStatus(models.TextChoices):
    NOT_REQUIRED = "not_required", "Not required"
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"


@dataclass(frozen=True)
class CaseOrder:
    """What the referral asks for beyond the procedure and sedation."""

    level_names: tuple[str, ...] = ()
    side: str = Side.NONE.value
    indication_code: str = ""
    indication_text: str = ""
    referring_provider: str = ""
    external_order_id: str = ""
    prior_auth_number: str = ""
    prior_auth_status: str = PriorAuthStatus.NOT_REQUIRED.value
    notes: str = ""
    fields: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def as_model_fields(self) -> dict[str, Any]:
        return {
            "level_names": list(self.level_names),
            "side": self.side,
            "indication_code": self.indication_code,
            "indication_text": self.indication_text,
            "referring_provider": self.referring_provider,
            "external_order_id": self.external_order_id,
            "prior_auth_number": self.prior_auth_number,
            "prior_auth_status": self.prior_auth_status,
            "order_notes": self.notes,
        }


ORDER_FIELD_LIMITS = {
    "indication_text": 200,
    "referring_provider": 120,
    "external_order_id": 60,
    "prior_auth_number": 60,
    "notes": 1000,
}


def parse_level_names(raw: str | Iterable[str] | None) -> tuple[str, ...]:
    """Level names from "T12, L1" or a list, upper-cased and in spinal order. Raises
    BookingInvalid naming every unknown or repeated level."""
    if raw is None:
        return ()
    items = re.split(r"[\s,;]+", raw) if isinstance(raw, str) else [str(item) for item in raw]
    names = [item.strip().upper() for item in items if item and item.strip()]
    unknown = [name for name in names if name not in LEVEL_RANK]
    problems = []
    if unknown:
        problems.append(
            Problem(
                "level_unknown",
                f"Not a spinal level: {', '.join(unknown)}. Name levels as C1–C7, T1–T12, L1–L5 or S1–S5.",
                field="level_names",
            )
        )
    repeated = sorted({name for name in names if names.count(name) > 1}, key=lambda n: LEVEL_RANK.get(n, 99))
    if repeated:
        problems.append(Problem("level_repeated", f"Named twice: {', '.join(repeated)}.", field="level_names"))
    if len(names) > MAX_LEVEL_NAMES:
        problems.append(Problem("levels_too_many", f"Name at most {MAX_LEVEL_NAMES} levels.", field="level_names"))
    if problems:
        raise BookingInvalid(problems)
    return tuple(sorted(names, key=LEVEL_RANK.__getitem__))


def level_count(level_names: tuple[str, ...], levels: int | None) -> int:
    """The number of levels of a case: the named levels' count when named, else ``levels``
    (default 1). Raises BookingInvalid when both are given and disagree."""
    if not level_names:
        return levels or 1
    if levels is not None and levels != len(level_names):
        raise BookingInvalid(
            [
                Problem(
                    "levels_mismatch",
                    f"{levels} level{'s' if levels != 1 else ''} asked but {len(level_names)} named "
                    f"({', '.join(level_names)}); name the levels or give the count, not both.",
                    field="levels",
                )
            ]
        )
    return len(level_names)


def case_order(data: Mapping[str, Any]) -> CaseOrder:
    """A checked order from plain values (a form's or a request's). Raises BookingInvalid with
    every problem."""
    problems: list[Problem] = []
    try:
        names = parse_level_names(data.get("level_names"))
    except BookingInvalid as exc:
        problems.extend(exc.problems)
        names = ()
    text = {key: str(data.get(key) or "").strip() for key in ORDER_FIELD_LIMITS}
    for key, limit in ORDER_FIELD_LIMITS.items():
        if len(text[key]) > limit:
            problems.append(Problem("too_long", f"At most {limit} characters.", field=key))
    code = str(data.get("indication_code") or "").strip().upper()
    if code and not ICD10.match(code):
        problems.append(
            Problem("icd10_invalid", f"{code!r} is not an ICD-10 code (e.g. M80.08XA).", field="indication_code")
        )
    if text["indication_text"] and not code:
        problems.append(Problem("icd10_missing", "Give the ICD-10 code with the indication.", field="indication_code"))
    side = str(data.get("side") or "")
    if side not in Side.values:
        problems.append(
            Problem("side_invalid", f"Side is one of {', '.join(v for v in Side.values if v)}.", field="side")
        )
    status = str(data.get("prior_auth_status") or PriorAuthStatus.NOT_REQUIRED)
    if status not in PriorAuthStatus.values:
        problems.append(
            Problem("prior_auth_status_invalid", "Unknown prior authorisation status.", "prior_auth_status")
        )
    elif status in (PriorAuthStatus.APPROVED, PriorAuthStatus.PENDING) and not text["prior_auth_number"]:
        problems.append(
            Problem(
                "prior_auth_number_missing",
                "Give the prior authorisation number (or mark it not required).",
                field="prior_auth_number",
            )
        )
    if problems:
        raise BookingInvalid(problems)
    return CaseOrder(
        level_names=names,
        side=side,
        indication_code=code,
        indication_text=text["indication_text"],
        referring_provider=text["referring_provider"],
        external_order_id=text["external_order_id"],
        prior_auth_number=text["prior_auth_number"],
        prior_auth_status=status,
        notes=text["notes"],
    )


def cpt_codes(procedure_code: str, level_names: Iterable[str], levels: int, catalogue_codes: str = "") -> list[str]:
    """The CPT codes a case bills: for vertebroplasty and kyphoplasty, the first level's code by
    region and an add-on code per extra level; for other procedures, the catalogue's codes."""
    names = list(level_names)
    first = names[0] if names else ""
    extra = max(levels, len(names), 1) - 1
    if procedure_code == "VP":
        primary = "22511" if first[:1] in ("L", "S") else "22510"
        return [primary] + ["+22512"] * extra
    if procedure_code == "KP":
        primary = "22514" if first[:1] in ("L", "S") else "22513"
        return [primary] + ["+22515"] * extra
    return [code.strip() for code in re.split(r"[,;]", catalogue_codes) if re.fullmatch(r"\+?\d{5}", code.strip())]


def levels_label(level_names: Iterable[str], levels: int, side: str = "") -> str:
    """How pages and lists name a case's levels: "T12, L1 (left)" or "2 levels"."""
    names = list(level_names)
    text = ", ".join(names) if names else f"{levels} level{'s' if levels != 1 else ''}"
    return f"{text} ({Side(side).label.lower()})" if side else text
