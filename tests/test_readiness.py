"""Every readiness rule on its own: ok, missing and failed, with the site's policy and the
procedure type's flags deciding. The evaluation is pure, so most cases need no database."""

import datetime as dt
from decimal import Decimal

import pytest

from patients.models import Drug, ImagingStudy, LabResult, MedicationHold, Patient
from procedure_day.models import CaseChecklist
from procedure_day.readiness import (
    ChecklistItem,
    evaluate_readiness,
    load_readiness,
    readiness_passes,
    readiness_summaries,
)
from rooms.models import Site
from scheduling.catalogue import DEFAULTS
from scheduling.models import Booking, ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests.conftest import MONDAY, local
from tests.factories import drug

NOW = local(MONDAY, 8, 45)
SATURDAY = dt.date(2027, 1, 9)


def procedure(code: str, **changes) -> ProcedureType:
    values = next(d for d in DEFAULTS if d["code"] == code)
    return ProcedureType(**{**values, **changes})


def case(code: str = "VP", *, sedation: str | None = None, escort=("Escort Example", "555-0101"), **changes) -> Booking:
    pt = procedure(code, **changes)
    patient = Patient(pk=7, mrn="MRN7", escort_name=escort[0], escort_phone=escort[1])
    site = Site(name="Main", code="main", timezone="America/Chicago")
    return Booking(
        pk=70,
        patient=patient,
        procedure_type=pt,
        site=site,
        sedation=sedation or pt.sedation_default,
        starts_at=local(MONDAY, 9),
        ends_at=local(MONDAY, 12),
        arrival_at=local(MONDAY, 8),
    )


def complete_checklist(**changes) -> CaseChecklist:
    values = dict(
        consent_signed_at=local(MONDAY, 8, 15),
        escort_confirmed=True,
        last_solids_at=local(MONDAY, 1),
        last_clears_at=local(MONDAY, 7),
        pregnancy_status="negative",
        allergies_reviewed=True,
    )
    values.update(changes)
    return CaseChecklist(**values)


def lab(test: str, value: str, day: dt.date = SATURDAY) -> LabResult:
    return LabResult(test=test, value=Decimal(value), taken_at=local(day, 10))


GOOD_LABS = [lab("inr", "1.1"), lab("platelets", "180")]
MRI = [ImagingStudy(modality="mri_stir", performed_on=dt.date(2027, 1, 2))]


def evaluate(booking=None, *, checklist=None, holds=(), labs=GOOD_LABS, imaging=MRI, now=NOW, site=None):
    booking = booking or case()
    return evaluate_readiness(
        booking=booking,
        checklist=complete_checklist() if checklist is None else checklist,
        holds=list(holds),
        labs=list(labs),
        imaging=list(imaging),
        site=site or booking.site,
        now=now,
    )


def item(items: list[ChecklistItem], code: str) -> tuple[str, str]:
    found = next(i for i in items if i.code == code)
    return found.status, found.detail


def test_a_complete_vertebroplasty_passes_every_item():
    items = evaluate()
    assert [(i.code, i.status) for i in items] == [
        ("consent", "ok"),
        ("escort", "ok"),
        ("holds", "ok"),
        ("inr", "ok"),
        ("platelets", "ok"),
        ("imaging", "ok"),
        ("fasting", "ok"),
        ("pregnancy", "ok"),
        ("allergies", "ok"),
    ]
    assert readiness_passes(items) is True


def test_a_medial_branch_block_needs_only_consent_pregnancy_and_allergies():
    items = evaluate(case("MBB"), checklist=complete_checklist(escort_confirmed=False), labs=[], imaging=[])
    assert [(i.code, i.status) for i in items] == [
        ("consent", "ok"),
        ("escort", "not_required"),
        ("holds", "not_required"),
        ("inr", "not_required"),
        ("platelets", "not_required"),
        ("imaging", "not_required"),
        ("fasting", "not_required"),
        ("pregnancy", "ok"),
        ("allergies", "ok"),
    ]
    assert readiness_passes(items) is True


def test_nothing_recorded_is_missing_not_failed():
    items = evaluate_readiness(booking=case(), checklist=None, holds=[], labs=[], imaging=[], site=case().site, now=NOW)
    assert {i.code: i.status for i in items} == {
        "consent": "missing",
        "escort": "missing",
        "holds": "ok",
        "inr": "missing",
        "platelets": "missing",
        "imaging": "missing",
        "fasting": "missing",
        "pregnancy": "missing",
        "allergies": "missing",
    }
    assert readiness_passes(items) is False


# --- consent ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signed", "expected"),
    [
        (None, ("missing", "No signed consent recorded.")),
        (local(MONDAY, 8, 15), ("ok", "Signed at 08:15.")),
        (
            local(SATURDAY, 15),
            ("failed", "Consent was signed on 2027-01-09; it must be signed on the day of the case (2027-01-11)."),
        ),
        (local(MONDAY, 8, 50), ("failed", "The consent time recorded is in the future.")),
    ],
)
def test_consent_is_signed_on_the_day_before_now(signed, expected):
    assert item(evaluate(checklist=complete_checklist(consent_signed_at=signed)), "consent") == expected


# --- escort -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("escort", "confirmed", "expected"),
    [
        (("Escort Example", "555-0101"), True, ("ok", "Escort named and pickup confirmed.")),
        (("Escort Example", "555-0101"), False, ("missing", "Missing: pickup confirmation.")),
        (("", "555-0101"), True, ("missing", "Missing: escort name.")),
        (("Escort Example", " "), False, ("missing", "Missing: escort phone, pickup confirmation.")),
    ],
)
def test_escort_needs_name_phone_and_confirmed_pickup(escort, confirmed, expected):
    items = evaluate(case(escort=escort), checklist=complete_checklist(escort_confirmed=confirmed))
    assert item(items, "escort") == expected


def test_escort_is_required_by_sedation_or_by_the_procedure_type():
    unconfirmed = complete_checklist(escort_confirmed=False)
    # Vertebroplasty under local only still needs a driver: the catalogue says so.
    assert item(evaluate(case("VP", sedation="local"), checklist=unconfirmed), "escort")[0] == "missing"
    # An ESI is local by default: no escort; sedated, it needs one.
    assert item(evaluate(case("ESI-IL"), checklist=unconfirmed), "escort")[0] == "not_required"
    assert item(evaluate(case("ESI-IL", sedation="moderate"), checklist=unconfirmed), "escort")[0] == "missing"
    # The flag is data: a clinic may require an escort for ESI too.
    assert item(evaluate(case("ESI-IL", requires_escort=True), checklist=unconfirmed), "escort")[0] == "missing"


# --- anticoagulant holds ------------------------------------------------------------------


def hold(medication: str, days: int, last_dose: dt.date | None) -> MedicationHold:
    """A hold of a drug whose list asks ``days`` at high and intermediate risk, none at low."""
    listed = Drug(code=medication, name=medication, hold_days_high=days, hold_days_intermediate=days, hold_days_low=0)
    return MedicationHold(drug=listed, last_dose_on=last_dose)


@pytest.mark.parametrize(
    ("holds", "expected"),
    [
        ([], ("ok", "No anticoagulant or antiplatelet to hold.")),
        # Last dose on the 5th: the 6th..10th are five whole days without it before the 11th.
        ([hold("warfarin", 5, dt.date(2027, 1, 5))], ("ok", "Every hold is complete.")),
        (
            [hold("warfarin", 5, dt.date(2027, 1, 6))],
            (
                "failed",
                "warfarin: last dose 2027-01-06, needs 5 days. First date the case may take place: 2027-01-12.",
            ),
        ),
        (
            [hold("clopidogrel", 7, dt.date(2027, 1, 5)), hold("aspirin", 6, dt.date(2027, 1, 6))],
            (
                "failed",
                "clopidogrel: last dose 2027-01-05, needs 7 days; aspirin: last dose 2027-01-06, needs 6 days. "
                "First date the case may take place: 2027-01-13.",
            ),
        ),
        (
            [hold("apixaban", 3, None)],
            ("failed", "apixaban: no last dose recorded. First date the case may take place: 2027-01-15."),
        ),
    ],
)
def test_holds_need_enough_whole_days_without_the_drug(holds, expected):
    assert item(evaluate(holds=holds), "holds") == expected


def test_holds_apply_to_intermediate_risk_but_not_low():
    short = [hold("clopidogrel", 7, dt.date(2027, 1, 8))]
    assert item(evaluate(case("ESI-IL"), holds=short), "holds")[0] == "failed"
    assert item(evaluate(case("MBB"), holds=short), "holds") == (
        "not_required",
        "No hold needed at this procedure's bleeding risk.",
    )


# --- labs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labs", "inr", "platelets"),
    [
        (
            [lab("inr", "1.5"), lab("platelets", "50")],
            ("ok", "INR 1.5 on 2027-01-09 (must be at most 1.5)."),
            ("ok", "Platelets 50 on 2027-01-09 (must be at least 50)."),
        ),
        (
            [lab("inr", "1.6"), lab("platelets", "49")],
            ("failed", "INR 1.6 on 2027-01-09 (must be at most 1.5)."),
            ("failed", "Platelets 49 on 2027-01-09 (must be at least 50)."),
        ),
        (
            [lab("inr", "1.1", dt.date(2027, 1, 3)), lab("platelets", "200", dt.date(2027, 1, 4))],
            ("missing", "Latest INR is from 2027-01-03, outside the 7-day window before the case."),
            ("ok", "Platelets 200 on 2027-01-04 (must be at least 50)."),
        ),
        (
            [],
            ("missing", "No INR result on file."),
            ("missing", "No Platelets result on file."),
        ),
    ],
)
def test_labs_for_high_bleeding_risk_are_recent_and_within_limits(labs, inr, platelets):
    items = evaluate(labs=labs)
    assert item(items, "inr") == inr
    assert item(items, "platelets") == platelets


def test_the_latest_lab_decides_and_a_future_one_is_ignored():
    labs = [lab("inr", "1.9", dt.date(2027, 1, 8)), lab("inr", "1.2", SATURDAY), lab("platelets", "150")]
    labs.append(LabResult(test="inr", value=Decimal("3.0"), taken_at=local(MONDAY, 9)))
    assert item(evaluate(labs=labs), "inr")[0] == "ok"


def test_lab_limits_and_window_come_from_the_site():
    site = Site(name="Strict", code="strict", timezone="America/Chicago", lab_window_days=1)
    assert item(evaluate(site=site), "inr") == (
        "missing",
        "Latest INR is from 2027-01-09, outside the 1-day window before the case.",
    )
    site.lab_window_days = 2
    site.inr_max = Decimal("1.0")
    assert item(evaluate(site=site), "inr") == ("failed", "INR 1.1 on 2027-01-09 (must be at most 1.0).")
    site.platelets_min = 200
    assert item(evaluate(site=site), "platelets") == ("failed", "Platelets 180 on 2027-01-09 (must be at least 200).")


def test_labs_are_not_required_below_high_risk():
    items = evaluate(case("ESI-IL"), labs=[])
    assert item(items, "inr")[0] == item(items, "platelets")[0] == "not_required"


# --- imaging ------------------------------------------------------------------------------


def test_imaging_on_file_when_the_procedure_needs_it():
    assert item(evaluate(imaging=[]), "imaging") == ("missing", "No MRI, CT or bone scan on file.")
    assert item(evaluate(), "imaging") == ("ok", "MRI with STIR on 2027-01-02.")
    later = [ImagingStudy(modality="ct", performed_on=dt.date(2027, 1, 12))]
    assert item(evaluate(imaging=later), "imaging")[0] == "missing"
    assert item(evaluate(case("ESI-IL"), imaging=[]), "imaging")[0] == "not_required"


# --- fasting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("solids", "clears", "expected"),
    [
        (local(MONDAY, 1), local(MONDAY, 7), ("ok", "Nothing solid for 8 h, no clears for 2 h.")),
        (
            local(MONDAY, 1, 1),
            local(MONDAY, 7),
            ("failed", "Last solids at 01:01, after the 01:00 cut-off (8 h before the 09:00 start)."),
        ),
        (
            local(SATURDAY, 20),
            local(MONDAY, 7, 30),
            ("failed", "Last clear liquids at 07:30, after the 07:00 cut-off (2 h before the 09:00 start)."),
        ),
        (None, local(MONDAY, 7), ("missing", "Not recorded: last solids.")),
        (None, None, ("missing", "Not recorded: last solids and last clear liquids.")),
    ],
)
def test_fasting_when_sedated_counts_back_from_the_start(solids, clears, expected):
    checklist = complete_checklist(last_solids_at=solids, last_clears_at=clears)
    assert item(evaluate(checklist=checklist), "fasting") == expected


def test_fasting_hours_come_from_the_site_and_local_cases_need_none():
    site = Site(name="Main", code="main", timezone="America/Chicago", npo_solids_hours=6)
    checklist = complete_checklist(last_solids_at=local(MONDAY, 2, 30))
    assert item(evaluate(checklist=checklist), "fasting")[0] == "failed"
    assert item(evaluate(checklist=checklist, site=site), "fasting")[0] == "ok"
    assert item(evaluate(case("ESI-IL"), checklist=CaseChecklist()), "fasting")[0] == "not_required"


# --- pregnancy and allergies --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("negative", ("ok", "Negative.")),
        ("not_applicable", ("ok", "Not applicable.")),
        ("unknown", ("missing", "Not screened.")),
        ("positive", ("failed", "Positive screen: fluoroscopy of the spine or pelvis is contraindicated.")),
    ],
)
def test_pregnancy_screen(status, expected):
    assert item(evaluate(checklist=complete_checklist(pregnancy_status=status)), "pregnancy") == expected


def test_pregnancy_screen_only_where_the_procedure_type_asks():
    booking = case("MBB", requires_pregnancy_screen=False)
    assert item(evaluate(booking, checklist=CaseChecklist()), "pregnancy")[0] == "not_required"


def test_allergies_must_be_reviewed():
    assert item(evaluate(checklist=complete_checklist(allergies_reviewed=False)), "allergies") == (
        "missing",
        "Contrast and cement allergies not reviewed.",
    )


# --- loading ------------------------------------------------------------------------------


def vp_booking(clinic, hour: int, patient: int, bay: int) -> Booking:
    return booking_create(
        request=CaseRequest(
            procedure_type=clinic.vp(),
            patient=clinic.patients[patient],
            pins=clinic.resources(recovery_bay=clinic.bays[bay]),
        ),
        actor=None,
        starts_at=local(MONDAY, hour),
    )


def test_the_loader_reads_a_case_in_four_queries(clinic, django_assert_num_queries):
    booking = vp_booking(clinic, 9, 0, 0)
    LabResult.objects.create(patient=booking.patient, test="inr", value=Decimal("1.1"), taken_at=local(SATURDAY, 9))
    MedicationHold.objects.create(patient=booking.patient, drug=drug("warfarin"))
    booking = Booking.objects.select_related("patient", "procedure_type", "site").get(pk=booking.pk)
    with django_assert_num_queries(4):
        inputs = load_readiness(booking)
    assert inputs.checklist is None
    assert [h.drug.code for h in inputs.holds] == ["warfarin"]
    assert [lab.test for lab in inputs.labs] == ["inr"]
    assert inputs.imaging == []


def test_summaries_for_a_day_take_four_queries_however_many_cases(clinic, django_assert_num_queries):
    first = vp_booking(clinic, 8, 0, 0)
    second = vp_booking(clinic, 11, 1, 1)
    # Records of other patients stay out of the answer.
    for patient in clinic.patients[2:6]:
        ImagingStudy.objects.create(patient=patient, modality="ct", performed_on=dt.date(2027, 1, 1))
    CaseChecklist.objects.create(booking=second, override_at=NOW)
    Booking.objects.filter(pk=second.pk).update(status="ready")
    bookings = list(Booking.objects.select_related("patient", "procedure_type", "site").order_by("id"))
    with django_assert_num_queries(4):
        summaries = readiness_summaries(bookings, now=NOW)
    assert summaries[first.pk].as_dict() == {
        "status": "not_ready",
        "outstanding": ["consent", "escort", "inr", "platelets", "imaging", "fasting", "pregnancy", "allergies"],
        "due_on_day": [],
    }
    assert summaries[second.pk].as_dict() == {"status": "overridden", "outstanding": [], "due_on_day": []}
