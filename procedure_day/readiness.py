"""The readiness gate before the room phase: one checklist per case, from the procedure type,
the patient's records and what staff recorded on the day.

``evaluate_readiness`` is pure (no queries): every threshold comes from the site's policy
fields or the procedure type's flags, so a clinic changes the rules by editing rows. The
loaders fetch its inputs in a fixed number of queries, for one case or a whole day's list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.utils import timezone

from core.dates import to_local
from patients.models import BleedingRisk, ImagingStudy, LabResult, LabTest, MedicationHold
from procedure_day.models import CaseChecklist, PregnancyStatus
from rooms.models import Site
from scheduling.holdrule import HoldRow, hold_first_allowed_day, hold_verdict
from scheduling.models import Booking, BookingStatus, Sedation

ItemStatus = Literal["ok", "missing", "failed", "not_required", "overridden", "due_on_day"]
OK: ItemStatus = "ok"
MISSING: ItemStatus = "missing"
FAILED: ItemStatus = "failed"
NOT_REQUIRED: ItemStatus = "not_required"
# Overridden when it was booked: a physician or an administrator decided, with a reason.
OVERRIDDEN: ItemStatus = "overridden"
# Done only on the day of the case (consent, fasting, the escort's pickup): before that day it is
# not missing, it is due. The gate itself only runs on the day, so a due item never passes it.
DUE_ON_DAY: ItemStatus = "due_on_day"
PASSING: frozenset[str] = frozenset({OK, NOT_REQUIRED, OVERRIDDEN})

# Statuses at or past the gate: their readiness is what the gate decided, not a fresh look.
PAST_THE_GATE = frozenset(
    {
        BookingStatus.READY,
        BookingStatus.IN_PROCEDURE,
        BookingStatus.IN_RECOVERY,
        BookingStatus.READY_FOR_DISCHARGE,
        BookingStatus.DISCHARGED,
    }
)
PREGNANCY_OK = frozenset({PregnancyStatus.NEGATIVE, PregnancyStatus.NOT_APPLICABLE})


@dataclass(frozen=True)
class ChecklistItem:
    code: str
    label: str
    status: ItemStatus
    detail: str = ""

    @property
    def passes(self) -> bool:
        return self.status in PASSING

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "label": self.label, "status": self.status, "detail": self.detail}


def readiness_passes(items: Iterable[ChecklistItem]) -> bool:
    return all(item.passes for item in items)


def failing_codes(items: Iterable[ChecklistItem]) -> list[str]:
    return [item.code for item in items if not item.passes]


def escort_required(booking: Booking) -> bool:
    """A responsible adult must take the patient home after any sedation, and after procedures
    the catalogue marks (vertebral augmentation) even under local anaesthesia."""
    return booking.sedation != Sedation.LOCAL or booking.procedure_type.requires_escort


def evaluate_readiness(
    *,
    booking: Booking,
    checklist: CaseChecklist | None,
    holds: Sequence[MedicationHold],
    labs: Sequence[LabResult],
    imaging: Sequence[ImagingStudy],
    site: Site,
    now: datetime,
) -> list[ChecklistItem]:
    """Every checklist item of the case, in a fixed order.

    Expects ``booking.patient`` and ``booking.procedure_type`` loaded; ``checklist`` is None
    while nothing has been recorded for the case.
    """
    zone = site.zone
    case_day = booking.starts_at.astimezone(zone).date()
    today = now.astimezone(zone).date()
    recorded = checklist if checklist is not None else CaseChecklist()
    before_the_day = today < case_day
    return [
        _consent(recorded, zone, case_day, now, before_the_day),
        _escort(booking, recorded, before_the_day),
        _holds(booking, holds, case_day, today),
        *_labs(booking, labs, site, case_day, now),
        _imaging(booking, imaging, case_day),
        _fasting(booking, recorded, site, zone, before_the_day),
        _pregnancy(booking, recorded),
        _allergies(recorded),
    ]


def _day_and_time(moment: datetime, zone: ZoneInfo, day: date) -> str:
    local = to_local(moment, zone)
    return f"{local:%H:%M}" if local.date() == day else f"{local:%Y-%m-%d %H:%M}"


def _consent(
    checklist: CaseChecklist, zone: ZoneInfo, case_day: date, now: datetime, before_the_day: bool
) -> ChecklistItem:
    label = "Consent signed"
    signed = checklist.consent_signed_at
    if signed is None and before_the_day:
        return ChecklistItem("consent", label, DUE_ON_DAY, f"Signed on the day of the case ({case_day.isoformat()}).")
    if signed is None:
        return ChecklistItem("consent", label, MISSING, "No signed consent recorded.")
    if signed > now:
        return ChecklistItem("consent", label, FAILED, "The consent time recorded is in the future.")
    signed_day = to_local(signed, zone).date()
    if signed_day != case_day:
        # Consent is taken on the day, after the pre-op talk: an older form may predate changes.
        return ChecklistItem(
            "consent",
            label,
            FAILED,
            f"Consent was signed on {signed_day.isoformat()}; it must be signed on the day of the case "
            f"({case_day.isoformat()}).",
        )
    return ChecklistItem("consent", label, OK, f"Signed at {_day_and_time(signed, zone, case_day)}.")


def _escort(booking: Booking, checklist: CaseChecklist, before_the_day: bool) -> ChecklistItem:
    label = "Escort home"
    if not escort_required(booking):
        return ChecklistItem("escort", label, NOT_REQUIRED, "Local anaesthesia only; no escort needed.")
    patient = booking.patient
    gaps = [
        text
        for missing, text in (
            (not patient.escort_name.strip(), "escort name"),
            (not patient.escort_phone.strip(), "escort phone"),
            (not checklist.escort_confirmed, "pickup confirmation"),
        )
        if missing
    ]
    if gaps == ["pickup confirmation"] and before_the_day:
        # Named ahead; the pickup is confirmed with the escort on the day.
        return ChecklistItem("escort", label, DUE_ON_DAY, "Escort named; pickup confirmed on the day.")
    if gaps:
        return ChecklistItem("escort", label, MISSING, f"Missing: {', '.join(gaps)}.")
    return ChecklistItem("escort", label, OK, "Escort named and pickup confirmed.")


def _holds(booking: Booking, holds: Sequence[MedicationHold], case_day: date, today: date) -> ChecklistItem:
    """The booking rule's hold verdict, on the day: the same function with today's records."""
    label = "Anticoagulant and antiplatelet holds"
    risk = booking.procedure_type.bleeding_risk
    rows = [HoldRow.of(hold) for hold in holds]
    applying = [row for row in rows if row.days_for(risk) > 0]
    if not applying:
        if rows or risk == BleedingRisk.LOW:
            return ChecklistItem("holds", label, NOT_REQUIRED, "No hold needed at this procedure's bleeding risk.")
        return ChecklistItem("holds", label, OK, "No anticoagulant or antiplatelet to hold.")
    verdict = hold_verdict(rows, risk, today)
    if not verdict.blocks(case_day):
        return ChecklistItem("holds", label, OK, "Every hold is complete.")
    if booking.anticoagulant_override_at is not None:
        by = booking.anticoagulant_override_by
        who = f" by {by.get_username()}" if by is not None else ""
        return ChecklistItem(
            "holds",
            label,
            OVERRIDDEN,
            f"Booked inside the hold{who}: {booking.anticoagulant_override_reason}",
        )
    short = []
    for row in applying:
        days = row.days_for(risk)
        if hold_first_allowed_day(row.last_dose_on, days, today) <= case_day:
            continue
        if row.last_dose_on is None:
            short.append(f"{row.medication}: no last dose recorded")
        else:
            short.append(f"{row.medication}: last dose {row.last_dose_on.isoformat()}, needs {days} days")
    assert verdict.first_day is not None
    return ChecklistItem(
        "holds",
        label,
        FAILED,
        f"{'; '.join(short)}. First date the case may take place: {verdict.first_day.isoformat()}.",
    )


def _labs(
    booking: Booking, labs: Sequence[LabResult], site: Site, case_day: date, now: datetime
) -> list[ChecklistItem]:
    specs = (
        (LabTest.INR, "inr", "INR"),
        (LabTest.PLATELETS, "platelets", "Platelets"),
    )
    if booking.procedure_type.bleeding_risk != BleedingRisk.HIGH:
        return [
            ChecklistItem(code, label, NOT_REQUIRED, "Not a high-bleeding-risk procedure.") for _, code, label in specs
        ]
    zone = site.zone
    oldest_day = case_day - timedelta(days=site.lab_window_days)
    items = []
    for test, code, label in specs:
        taken = [lab for lab in labs if lab.test == test and lab.taken_at <= now]
        latest = max(taken, key=lambda lab: (lab.taken_at, lab.pk or 0), default=None)
        if latest is None:
            items.append(ChecklistItem(code, label, MISSING, f"No {label} result on file."))
            continue
        taken_day = to_local(latest.taken_at, zone).date()
        if taken_day < oldest_day:
            # An old normal value says nothing about today: a new draw is needed, not a refusal.
            items.append(
                ChecklistItem(
                    code,
                    label,
                    MISSING,
                    f"Latest {label} is from {taken_day.isoformat()}, outside the {site.lab_window_days}-day "
                    "window before the case.",
                )
            )
            continue
        if test == LabTest.INR:
            within, limit = latest.value <= site.inr_max, f"at most {site.inr_max}"
        else:
            within, limit = latest.value >= site.platelets_min, f"at least {site.platelets_min}"
        detail = f"{label} {latest.value} on {taken_day.isoformat()} (must be {limit})."
        items.append(ChecklistItem(code, label, OK if within else FAILED, detail))
    return items


def _imaging(booking: Booking, imaging: Sequence[ImagingStudy], case_day: date) -> ChecklistItem:
    label = "Imaging on file"
    if not booking.procedure_type.requires_imaging:
        return ChecklistItem("imaging", label, NOT_REQUIRED, "No imaging needed for this procedure.")
    studies = [study for study in imaging if study.performed_on <= case_day]
    if not studies:
        return ChecklistItem("imaging", label, MISSING, "No MRI, CT or bone scan on file.")
    latest = max(studies, key=lambda study: study.performed_on)
    return ChecklistItem("imaging", label, OK, f"{latest.get_modality_display()} on {latest.performed_on.isoformat()}.")


def _fasting(
    booking: Booking, checklist: CaseChecklist, site: Site, zone: ZoneInfo, before_the_day: bool
) -> ChecklistItem:
    label = "Fasting (NPO)"
    if booking.sedation == Sedation.LOCAL:
        return ChecklistItem("fasting", label, NOT_REQUIRED, "Local anaesthesia only; no fasting needed.")
    start = booking.starts_at
    case_day = start.astimezone(zone).date()
    rules = (
        ("solids", checklist.last_solids_at, site.npo_solids_hours),
        ("clear liquids", checklist.last_clears_at, site.npo_clears_hours),
    )
    missing = [what for what, last, _ in rules if last is None]
    if missing and before_the_day:
        return ChecklistItem("fasting", label, DUE_ON_DAY, "Last solids and clear liquids are asked on the day.")
    if missing:
        return ChecklistItem("fasting", label, MISSING, f"Not recorded: last {' and last '.join(missing)}.")
    problems = []
    for what, last, hours in rules:
        assert last is not None
        cutoff = start - timedelta(hours=hours)
        if last > cutoff:
            problems.append(
                f"last {what} at {_day_and_time(last, zone, case_day)}, after the "
                f"{_day_and_time(cutoff, zone, case_day)} cut-off ({hours} h before the "
                f"{_day_and_time(start, zone, case_day)} start)"
            )
    if problems:
        text = "; ".join(problems)
        return ChecklistItem("fasting", label, FAILED, text[0].upper() + text[1:] + ".")
    return ChecklistItem(
        "fasting", label, OK, f"Nothing solid for {site.npo_solids_hours} h, no clears for {site.npo_clears_hours} h."
    )


def pregnancy_screen_applies(booking: Booking) -> bool:
    """The procedure puts the pelvis or spine in the beam and the patient may be pregnant on
    the case's day."""
    if not booking.procedure_type.requires_pregnancy_screen:
        return False
    return booking.patient.may_be_pregnant(booking.starts_at.astimezone(ZoneInfo(booking.site.timezone)).date())


def _pregnancy(booking: Booking, checklist: CaseChecklist) -> ChecklistItem:
    label = "Pregnancy screen"
    if not booking.procedure_type.requires_pregnancy_screen:
        return ChecklistItem("pregnancy", label, NOT_REQUIRED, "The pelvis and spine are not in the beam.")
    if not pregnancy_screen_applies(booking):
        return ChecklistItem("pregnancy", label, NOT_REQUIRED, "Pregnancy is not possible for this patient.")
    status = checklist.pregnancy_status
    if status in PREGNANCY_OK:
        return ChecklistItem("pregnancy", label, OK, PregnancyStatus(status).label + ".")
    if status == PregnancyStatus.POSITIVE:
        return ChecklistItem(
            "pregnancy", label, FAILED, "Positive screen: fluoroscopy of the spine or pelvis is contraindicated."
        )
    return ChecklistItem("pregnancy", label, MISSING, "Not screened.")


def _allergies(checklist: CaseChecklist) -> ChecklistItem:
    label = "Allergies reviewed"
    if checklist.allergies_reviewed:
        return ChecklistItem("allergies", label, OK, "Contrast and cement allergies reviewed.")
    return ChecklistItem("allergies", label, MISSING, "Contrast and cement allergies not reviewed.")


# --- loading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadinessInputs:
    checklist: CaseChecklist | None
    holds: list[MedicationHold] = field(default_factory=list)
    labs: list[LabResult] = field(default_factory=list)
    imaging: list[ImagingStudy] = field(default_factory=list)


def load_readiness_many(bookings: Sequence[Booking]) -> dict[int, ReadinessInputs]:
    """The gate's inputs for many cases in four queries, however many cases or records.

    Reads only; a case without a checklist gets ``None`` (creating one is a write, left to
    the services).
    """
    if not bookings:
        return {}
    booking_ids = [b.pk for b in bookings]
    patient_ids = {b.patient_id for b in bookings}
    checklists = {c.booking_id: c for c in CaseChecklist.objects.filter(booking_id__in=booking_ids)}
    holds: dict[int, list[MedicationHold]] = defaultdict(list)
    for hold in MedicationHold.objects.filter(patient_id__in=patient_ids).select_related("drug").order_by("id"):
        holds[hold.patient_id].append(hold)
    labs: dict[int, list[LabResult]] = defaultdict(list)
    for lab in LabResult.objects.filter(patient_id__in=patient_ids, test__in=LabTest.values).order_by("-taken_at"):
        labs[lab.patient_id].append(lab)
    imaging: dict[int, list[ImagingStudy]] = defaultdict(list)
    for study in ImagingStudy.objects.filter(patient_id__in=patient_ids).order_by("-performed_on", "-id"):
        imaging[study.patient_id].append(study)
    return {
        b.pk: ReadinessInputs(
            checklist=checklists.get(b.pk),
            holds=holds[b.patient_id],
            labs=labs[b.patient_id],
            imaging=imaging[b.patient_id],
        )
        for b in bookings
    }


def load_readiness(booking: Booking) -> ReadinessInputs:
    return load_readiness_many([booking])[booking.pk]


def evaluate_with(booking: Booking, inputs: ReadinessInputs, *, now: datetime) -> list[ChecklistItem]:
    return evaluate_readiness(
        booking=booking,
        checklist=inputs.checklist,
        holds=inputs.holds,
        labs=inputs.labs,
        imaging=inputs.imaging,
        site=booking.site,
        now=now,
    )


# --- summaries for lists ------------------------------------------------------------------


@dataclass(frozen=True)
class ReadinessSummary:
    """``status``: passed, overridden, not_ready, due_on_day (nothing missing but what is done on
    the day), or not_applicable (cancelled, no-show, hold). ``due``: the items done on the day."""

    status: str
    outstanding: tuple[str, ...] = ()
    due: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "outstanding": list(self.outstanding), "due_on_day": list(self.due)}


def summarize(booking: Booking, inputs: ReadinessInputs, *, now: datetime) -> ReadinessSummary:
    if booking.status in PAST_THE_GATE:
        overridden = inputs.checklist is not None and inputs.checklist.override_at is not None
        return ReadinessSummary("overridden" if overridden else "passed")
    if booking.status not in (BookingStatus.SCHEDULED, BookingStatus.CHECKED_IN):
        return ReadinessSummary("not_applicable")
    items = evaluate_with(booking, inputs, now=now)
    outstanding = tuple(item.code for item in items if not item.passes and item.status != DUE_ON_DAY)
    due = tuple(item.code for item in items if item.status == DUE_ON_DAY)
    if outstanding:
        return ReadinessSummary("not_ready", outstanding, due)
    return ReadinessSummary("due_on_day" if due else "passed", (), due)


def readiness_summaries(bookings: Sequence[Booking], *, now: datetime | None = None) -> dict[int, ReadinessSummary]:
    """One summary per case for a list (e.g. a physician's day), in four queries for all.

    Expects each booking's ``patient``, ``procedure_type`` and ``site`` loaded.
    """
    moment = now or timezone.now()
    inputs = load_readiness_many(bookings)
    return {b.pk: summarize(b, inputs[b.pk], now=moment) for b in bookings}
