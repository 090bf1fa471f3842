"""The status transitions of a case's day, their refusals, the override and discharge rules."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from core.errors import BookingInvalid, InvalidTransition, OverrideNotPermitted, ReadinessNotMet
from core.models import AuditEvent
from outbox.models import Alert, Notification, NotificationStatus
from outbox.services import alert_resolve, enqueue_notification
from patients.models import ImagingStudy, LabResult
from patients.services import imaging_study_record, lab_result_record
from procedure_day.models import CaseChecklist
from procedure_day.services.checklist import checklist_update
from procedure_day.services.late import booking_end_procedure
from procedure_day.services.transitions import (
    booking_check_in,
    booking_discharge,
    booking_mark_ready,
    booking_mark_ready_for_discharge,
    booking_no_show,
    booking_start_procedure,
    booking_start_recovery,
    recovery_timers_run,
)
from scheduling.models import Allocation, Booking, ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_cancel, booking_create
from tests import factories as f
from tests.conftest import MONDAY, local

pytestmark = pytest.mark.django_db
NINE = local(MONDAY, 9)
SATURDAY = dt.date(2027, 1, 9)


def at(hour: int, minute: int = 0, day: dt.date = MONDAY):
    return time_machine.travel(local(day, hour, minute), tick=False)


def book_vp(clinic, start=NINE, patient=0, **resources) -> Booking:
    return booking_create(
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**resources)
        ),
        actor=None,
        starts_at=start,
    )


def record_ready(booking: Booking) -> CaseChecklist:
    """Everything a vertebroplasty under moderate sedation at 09:00 needs to pass the gate."""
    LabResult.objects.create(patient=booking.patient, test="inr", value=Decimal("1.1"), taken_at=local(SATURDAY, 10))
    LabResult.objects.create(
        patient=booking.patient, test="platelets", value=Decimal("180"), taken_at=local(SATURDAY, 10)
    )
    ImagingStudy.objects.create(patient=booking.patient, modality="mri_stir", performed_on=dt.date(2027, 1, 2))
    return CaseChecklist.objects.create(
        booking=booking,
        consent_signed_at=local(MONDAY, 8, 15),
        escort_confirmed=True,
        last_solids_at=local(MONDAY, 0, 30),
        last_clears_at=local(MONDAY, 6, 30),
        pregnancy_status="not_applicable",
        allergies_reviewed=True,
    )


def actions(booking: Booking) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="scheduling.booking", object_id=str(booking.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


def set_status(booking: Booking, status: str, **stamps) -> Booking:
    Booking.objects.filter(pk=booking.pk).update(status=status, **stamps)
    booking.refresh_from_db()
    return booking


@pytest.fixture
def nurse():
    return f.UserFactory(username="nurse-user", groups=["nurse"])


@pytest.fixture
def physician():
    return f.UserFactory(username="physician-user", groups=["physician"])


def to_recovery(booking: Booking, actor) -> Booking:
    """Check in at 08:10, ready at 08:50, procedure 09:00-10:00, recovery from 10:00."""
    with at(8, 10):
        booking_check_in(actor=actor, booking=booking)
    with at(8, 50):
        booking_mark_ready(actor=actor, booking=booking)
    with at(9):
        booking_start_procedure(actor=actor, booking=booking)
    with at(10):
        booking_end_procedure(actor=actor, booking=booking)
        booking_start_recovery(actor=actor, booking=booking)
    booking.refresh_from_db()
    return booking


# --- the whole day ------------------------------------------------------------------------


def test_a_case_walks_through_every_status_with_its_times_and_audit(clinic, nurse, physician):
    booking = book_vp(clinic)
    record_ready(booking)
    with at(8, 10):
        assert booking_check_in(actor=nurse, booking=booking).status == "checked_in"
    with at(8, 50):
        assert booking_mark_ready(actor=nurse, booking=booking).status == "ready"
    with at(9, 2):
        assert booking_start_procedure(actor=physician, booking=booking).status == "in_procedure"
    # Two minutes late: the case's legs moved with it, so ending on the new plan moves nothing.
    booking.refresh_from_db()
    assert booking.starts_at == local(MONDAY, 9, 2)
    with at(10, 2):
        result = booking_end_procedure(actor=physician, booking=booking)
        assert (result.booking.status, result.moved, result.alerts) == ("in_procedure", [], [])
        assert booking_start_recovery(actor=physician, booking=booking).status == "in_recovery"
    with at(12, 2):
        assert booking_mark_ready_for_discharge(actor=nurse, booking=booking).status == "ready_for_discharge"
    with at(12, 5):
        assert booking_discharge(actor=nurse, booking=booking, escort_present=True).status == "discharged"

    booking.refresh_from_db()
    assert (
        booking.checked_in_at,
        booking.ready_at,
        booking.procedure_started_at,
        booking.procedure_ended_at,
        booking.recovery_started_at,
        booking.ready_for_discharge_at,
        booking.discharged_at,
    ) == (
        local(MONDAY, 8, 10),
        local(MONDAY, 8, 50),
        local(MONDAY, 9, 2),
        local(MONDAY, 10, 2),
        local(MONDAY, 10, 2),
        local(MONDAY, 12, 2),
        local(MONDAY, 12, 5),
    )
    assert actions(booking) == [
        "booking.create",
        "booking.check_in",
        "booking.ready",
        "booking.start_procedure",
        "booking.end_procedure",
        "booking.start_recovery",
        "booking.ready_for_discharge",
        "booking.discharge",
    ]
    events = AuditEvent.objects.filter(object_id=str(booking.pk), object_type="scheduling.booking").order_by("id")
    assert [e.actor_label for e in events] == [
        "system",
        "nurse-user",
        "nurse-user",
        "physician-user",
        "physician-user",
        "physician-user",
        "nurse-user",
        "nurse-user",
    ]
    assert events.get(action="booking.ready").details == {"from": "checked_in", "overridden": False}
    assert CaseChecklist.objects.get(booking=booking).escort_present_at == local(MONDAY, 12, 5)


# --- illegal transitions ------------------------------------------------------------------

TRANSITIONS = {
    "check_in": (booking_check_in, ["scheduled"]),
    "mark_ready": (booking_mark_ready, ["checked_in"]),
    "start_procedure": (booking_start_procedure, ["ready"]),
    "end_procedure": (booking_end_procedure, ["in_procedure"]),
    "start_recovery": (booking_start_recovery, ["in_procedure"]),
    "ready_for_discharge": (booking_mark_ready_for_discharge, ["in_recovery"]),
    "discharge": (booking_discharge, ["ready_for_discharge"]),
    "no_show": (booking_no_show, ["checked_in", "scheduled"]),
}
ILLEGAL = [
    ("check_in", "checked_in"),
    ("check_in", "cancelled"),
    ("mark_ready", "scheduled"),
    ("mark_ready", "ready"),
    ("start_procedure", "checked_in"),
    ("start_procedure", "in_procedure"),
    ("end_procedure", "ready"),
    ("end_procedure", "in_recovery"),
    ("start_recovery", "ready"),
    ("ready_for_discharge", "in_procedure"),
    ("discharge", "in_recovery"),
    ("discharge", "discharged"),
    ("no_show", "ready"),
    ("no_show", "in_procedure"),
    ("no_show", "cancelled"),
]


@pytest.mark.parametrize(("step", "status"), ILLEGAL)
def test_an_illegal_transition_is_refused_and_writes_nothing(clinic, nurse, step, status):
    booking = set_status(book_vp(clinic), status, cancel_reason="other" if status == "cancelled" else "")
    record_ready(booking)
    service, allowed_from = TRANSITIONS[step]
    kwargs = {"escort_present": True} if step == "discharge" else {}
    with at(8, 30), pytest.raises(InvalidTransition) as refused:
        service(actor=nurse, booking=booking, **kwargs)
    assert refused.value.details == {"status": status, "allowed_from": allowed_from}
    booking.refresh_from_db()
    assert booking.status == status
    assert actions(booking) == ["booking.create"]


def test_check_in_is_refused_before_the_day_of_the_case(clinic, nurse):
    booking = book_vp(clinic)
    with pytest.raises(InvalidTransition) as refused:
        booking_check_in(actor=nurse, booking=booking)
    assert refused.value.message == "The case is on 2027-01-11; patients check in on the day of their case."
    assert refused.value.details["case_day"] == "2027-01-11"
    booking.refresh_from_db()
    assert (booking.status, booking.checked_in_at) == ("scheduled", None)
    assert actions(booking) == ["booking.create"]


def test_recovery_cannot_start_before_the_procedure_ends(clinic, nurse):
    booking = set_status(book_vp(clinic), "in_procedure", procedure_started_at=NINE)
    with at(9, 30), pytest.raises(InvalidTransition) as refused:
        booking_start_recovery(actor=nurse, booking=booking)
    assert refused.value.message == "End the procedure before starting recovery."
    booking.refresh_from_db()
    assert (booking.status, booking.recovery_started_at) == ("in_procedure", None)
    assert actions(booking) == ["booking.create"]


def test_a_procedure_ends_once(clinic, physician):
    booking = set_status(book_vp(clinic), "in_procedure", procedure_started_at=NINE)
    with at(10):
        booking_end_procedure(actor=physician, booking=booking)
    with at(10, 5), pytest.raises(InvalidTransition) as refused:
        booking_end_procedure(actor=physician, booking=booking)
    assert refused.value.message == "The procedure has already ended."
    assert actions(booking) == ["booking.create", "booking.end_procedure"]


@pytest.mark.parametrize(
    ("ended_at", "code"),
    [(local(MONDAY, 10, 1), "ended_in_future"), (local(MONDAY, 8, 59), "ended_before_start")],
)
def test_an_impossible_end_time_is_refused(clinic, physician, ended_at, code):
    booking = set_status(book_vp(clinic), "in_procedure", procedure_started_at=NINE)
    legs_before = list(Allocation.objects.order_by("id").values_list("starts_at", "ends_at", "bay_id"))
    with at(10), pytest.raises(BookingInvalid) as refused:
        booking_end_procedure(actor=physician, booking=booking, ended_at=ended_at)
    assert [p.code for p in refused.value.problems] == [code]
    booking.refresh_from_db()
    assert booking.procedure_ended_at is None
    assert list(Allocation.objects.order_by("id").values_list("starts_at", "ends_at", "bay_id")) == legs_before
    assert actions(booking) == ["booking.create"]


# --- the readiness gate -------------------------------------------------------------------


def test_mark_ready_is_refused_while_the_checklist_does_not_pass(clinic, nurse):
    booking = book_vp(clinic)
    with at(8, 10):
        booking_check_in(actor=nurse, booking=booking)
    with at(8, 50), pytest.raises(ReadinessNotMet) as refused:
        booking_mark_ready(actor=nurse, booking=booking)
    assert [item["code"] for item in refused.value.items] == [
        "consent",
        "escort",
        "inr",
        "platelets",
        "imaging",
        "fasting",
        "pregnancy",
        "allergies",
    ]
    assert {item["status"] for item in refused.value.items} == {"missing"}
    booking.refresh_from_db()
    assert (booking.status, booking.ready_at) == ("checked_in", None)
    assert not CaseChecklist.objects.exists()
    assert actions(booking) == ["booking.create", "booking.check_in"]


def checked_in_with_positive_pregnancy(clinic, nurse) -> Booking:
    booking = book_vp(clinic)
    checklist = record_ready(booking)
    checklist.pregnancy_status = "positive"
    checklist.save()
    with at(8, 10):
        booking_check_in(actor=nurse, booking=booking)
    return booking


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_an_override_without_a_reason_is_refused(clinic, nurse, physician, reason):
    booking = checked_in_with_positive_pregnancy(clinic, nurse)
    with at(8, 50), pytest.raises(ReadinessNotMet) as refused:
        booking_mark_ready(actor=physician, booking=booking, override_reason=reason)
    assert refused.value.items == [
        {
            "code": "pregnancy",
            "label": "Pregnancy screen",
            "status": "failed",
            "detail": "Positive screen: fluoroscopy of the spine or pelvis is contraindicated.",
        }
    ]
    booking.refresh_from_db()
    assert booking.status == "checked_in"
    assert CaseChecklist.objects.get(booking=booking).override_at is None
    assert actions(booking) == ["booking.create", "booking.check_in"]


def test_an_override_by_a_role_that_may_not_is_refused(clinic, nurse):
    booking = checked_in_with_positive_pregnancy(clinic, nurse)
    with at(8, 50), pytest.raises(OverrideNotPermitted) as refused:
        booking_mark_ready(actor=nurse, booking=booking, override_reason="Physician says go")
    assert refused.value.details == {"failing": ["pregnancy"]}
    booking.refresh_from_db()
    assert booking.status == "checked_in"
    checklist = CaseChecklist.objects.get(booking=booking)
    assert (checklist.override_reason, checklist.override_by, checklist.override_at) == ("", None, None)
    assert actions(booking) == ["booking.create", "booking.check_in"]


def test_a_physician_override_is_recorded_audited_and_holds_at_the_room(clinic, nurse, physician):
    booking = checked_in_with_positive_pregnancy(clinic, nurse)
    with at(8, 50):
        ready = booking_mark_ready(
            actor=physician,
            booking=booking,
            override_reason="  Screen was a false positive; repeat negative.  ",
        )
    assert (ready.status, ready.ready_at) == ("ready", local(MONDAY, 8, 50))
    checklist = CaseChecklist.objects.get(booking=booking)
    assert (checklist.override_reason, checklist.override_by, checklist.override_at) == (
        "Screen was a false positive; repeat negative.",
        physician,
        local(MONDAY, 8, 50),
    )
    override = AuditEvent.objects.get(action="booking.readiness_override")
    assert (override.actor, override.object_id, override.details) == (
        physician,
        str(booking.pk),
        {"failing": ["pregnancy"]},
    )
    assert AuditEvent.objects.get(action="booking.ready").details == {"from": "checked_in", "overridden": True}
    # The overridden gate is not asked again at the room door.
    with at(9):
        assert booking_start_procedure(actor=physician, booking=booking).status == "in_procedure"


def test_a_reason_sent_while_the_checklist_passes_overrides_nothing(clinic, nurse, physician):
    booking = book_vp(clinic)
    record_ready(booking)
    with at(8, 10):
        booking_check_in(actor=nurse, booking=booking)
    with at(8, 50):
        booking_mark_ready(actor=physician, booking=booking, override_reason="just in case")
    checklist = CaseChecklist.objects.get(booking=booking)
    assert (checklist.override_reason, checklist.override_at) == ("", None)
    assert not AuditEvent.objects.filter(action="booking.readiness_override").exists()


def test_the_room_door_checks_the_list_again(clinic, nurse, physician):
    booking = book_vp(clinic)
    checklist = record_ready(booking)
    with at(8, 10):
        booking_check_in(actor=nurse, booking=booking)
    with at(8, 50):
        booking_mark_ready(actor=nurse, booking=booking)
    checklist.last_solids_at = local(MONDAY, 8, 55)
    checklist.save()
    with at(9), pytest.raises(ReadinessNotMet) as refused:
        booking_start_procedure(actor=physician, booking=booking)
    assert [(i["code"], i["status"]) for i in refused.value.items] == [("fasting", "failed")]
    booking.refresh_from_db()
    assert (booking.status, booking.procedure_started_at) == ("ready", None)
    assert actions(booking)[-1] == "booking.ready"


# --- recovery and discharge ---------------------------------------------------------------


def test_ready_for_discharge_waits_for_the_minimum_recovery(clinic, nurse):
    booking = book_vp(clinic)
    record_ready(booking)
    to_recovery(booking, nurse)
    with at(11, 59), pytest.raises(InvalidTransition) as refused:
        booking_mark_ready_for_discharge(actor=nurse, booking=booking)
    assert refused.value.message == "Minimum recovery is 120 min: 1 min remain (until 12:00)."
    assert refused.value.details == {
        "status": "in_recovery",
        "remaining_minutes": 1,
        "not_before": local(MONDAY, 12).isoformat(),
    }
    booking.refresh_from_db()
    assert booking.status == "in_recovery"
    assert not Notification.objects.filter(kind="ready_for_discharge").exists()
    assert "booking.ready_for_discharge" not in actions(booking)


def test_the_recovery_timer_marks_due_cases_once_and_notifies_once(clinic, nurse):
    booking = book_vp(clinic)
    record_ready(booking)
    to_recovery(booking, nurse)
    assert recovery_timers_run(now=local(MONDAY, 11, 59)) == 0
    assert recovery_timers_run(now=local(MONDAY, 12)) == 1
    assert recovery_timers_run(now=local(MONDAY, 12, 1)) == 0
    booking.refresh_from_db()
    assert (booking.status, booking.ready_for_discharge_at) == ("ready_for_discharge", local(MONDAY, 12))
    [notification] = Notification.objects.filter(booking=booking, kind="ready_for_discharge")
    assert (notification.kind, notification.dedupe_key, notification.site, notification.due_at) == (
        "ready_for_discharge",
        f"ready_for_discharge:booking:{booking.pk}",
        clinic.site,
        local(MONDAY, 12),
    )
    assert AuditEvent.objects.get(action="booking.ready_for_discharge").actor_label == "system"


def test_discharge_without_the_escort_is_refused_and_writes_nothing(clinic, nurse):
    booking = book_vp(clinic)
    record_ready(booking)
    to_recovery(booking, nurse)
    with at(12):
        booking_mark_ready_for_discharge(actor=nurse, booking=booking)
    legs_before = list(Allocation.objects.order_by("id").values_list("starts_at", "ends_at", "is_active"))
    with at(12, 5), pytest.raises(BookingInvalid) as refused:
        booking_discharge(actor=nurse, booking=booking, escort_present=False)
    assert [p.code for p in refused.value.problems] == ["escort_not_present"]
    booking.refresh_from_db()
    assert (booking.status, booking.discharged_at) == ("ready_for_discharge", None)
    assert CaseChecklist.objects.get(booking=booking).escort_present_at is None
    assert list(Allocation.objects.order_by("id").values_list("starts_at", "ends_at", "is_active")) == legs_before
    assert "booking.discharge" not in actions(booking)


def test_discharge_frees_what_is_left_of_the_legs(clinic, nurse):
    booking = book_vp(clinic)
    record_ready(booking)
    to_recovery(booking, nurse)
    # The clinic shortens the minimum recovery after the case was booked: the bay was held
    # until 12:00 but the patient may leave at 11:30.
    ProcedureType.objects.filter(code="VP").update(recovery_minutes=90)
    with at(11, 30):
        booking_mark_ready_for_discharge(actor=nurse, booking=booking)
        booking_discharge(actor=nurse, booking=booking, escort_present=True)
    legs = {leg.role: leg for leg in Allocation.objects.filter(booking=booking)}
    assert (legs["recovery_bay"].starts_at, legs["recovery_bay"].ends_at) == (local(MONDAY, 10), local(MONDAY, 11, 30))
    assert legs["patient"].ends_at == local(MONDAY, 11, 30)
    assert all(leg.is_active for leg in legs.values())
    booking.refresh_from_db()
    assert (booking.status, booking.ends_at) == ("discharged", local(MONDAY, 11, 30))
    details = AuditEvent.objects.get(action="booking.discharge").details
    assert details == {
        "from": "ready_for_discharge",
        "escort_present": True,
        "legs_shortened": sorted([legs["patient"].pk, legs["recovery_bay"].pk]),
        "legs_released": [],
    }


def test_a_local_case_without_escort_rule_leaves_without_one(clinic, nurse):
    f.CredentialFactory(staff=clinic.physicians[0], procedure_code="MBB")
    booking = booking_create(
        request=CaseRequest(
            procedure_type=ProcedureType.objects.get(code="MBB"),
            patient=clinic.patients[1],
            pins=clinic.resources(sedation_staff=None),
        ),
        actor=None,
        starts_at=NINE,
    )
    set_status(booking, "ready_for_discharge")
    with at(10, 30):
        discharged = booking_discharge(actor=nurse, booking=booking, escort_present=False)
    assert discharged.status == "discharged"
    assert not CaseChecklist.objects.filter(booking=booking).exists()


# --- no-show and cancel -------------------------------------------------------------------


def test_no_show_frees_the_legs_and_withdraws_pending_notifications(clinic, nurse):
    booking = book_vp(clinic)
    enqueue_notification(kind="follow_up_calls", dedupe_key=f"test:booking:{booking.pk}", due_at=NINE, booking=booking)
    pending = Notification.objects.filter(booking=booking, status=NotificationStatus.PENDING).count()
    with at(8, 20):
        assert booking_no_show(actor=nurse, booking=booking).status == "no_show"
    assert not Allocation.objects.filter(booking=booking, is_active=True).exists()
    assert set(Notification.objects.filter(booking=booking).values_list("status", flat=True)) == {"skipped"}
    assert AuditEvent.objects.get(action="booking.no_show").details == {
        "from": "scheduled",
        "legs_released": 7,
        "notifications_skipped": pending,
    }


def test_no_show_is_refused_before_the_patient_is_due(clinic, nurse):
    booking = book_vp(clinic)
    with at(7, 59), pytest.raises(InvalidTransition) as refused:
        booking_no_show(actor=nurse, booking=booking)
    assert refused.value.message == "The patient is due at 08:00; a no-show is recorded after that."
    assert Allocation.objects.filter(booking=booking, is_active=True).count() == 7
    booking.refresh_from_db()
    assert booking.status == "scheduled"
    assert actions(booking) == ["booking.create"]


def test_a_checked_in_case_can_still_be_cancelled(clinic, nurse):
    booking = book_vp(clinic)
    with at(8, 10):
        booking_check_in(actor=nurse, booking=booking)
        cancelled = booking_cancel(actor=nurse, booking=booking, reason="not_fasting")
    assert cancelled.status == "cancelled"
    assert not Allocation.objects.filter(booking=booking, is_active=True).exists()


# --- the checklist and its records --------------------------------------------------------


def test_checklist_update_creates_the_checklist_and_audits_field_names_only(clinic, nurse):
    booking = book_vp(clinic)
    with at(8, 15):
        checklist = checklist_update(
            actor=nurse, booking=booking, consent_signed_at=local(MONDAY, 8, 15), pregnancy_status="negative"
        )
    assert (checklist.consent_signed_at, checklist.pregnancy_status) == (local(MONDAY, 8, 15), "negative")
    event = AuditEvent.objects.get(action="checklist.update")
    assert (event.actor, event.details) == (
        nurse,
        {"booking": booking.pk, "fields": ["consent_signed_at", "pregnancy_status"]},
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"consent_signed_at": local(MONDAY, 8, 16)}, "in_future"),
        ({"last_solids_at": dt.datetime(2027, 1, 11, 6, 0)}, "naive_datetime"),
        ({"pregnancy_status": "maybe"}, "invalid_choice"),
        ({"escort_confirmed": "yes"}, "not_boolean"),
        ({"override_reason": "sneaky"}, "unknown_field"),
    ],
)
def test_checklist_update_refuses_bad_answers_and_writes_nothing(clinic, nurse, fields, code):
    booking = book_vp(clinic)
    with at(8, 15), pytest.raises(BookingInvalid) as refused:
        checklist_update(actor=nurse, booking=booking, **fields)
    assert [p.code for p in refused.value.problems] == [code]
    assert not CaseChecklist.objects.exists()
    assert not AuditEvent.objects.filter(action="checklist.update").exists()


def test_a_closed_case_has_a_closed_checklist(clinic, nurse):
    booking = book_vp(clinic)
    booking_cancel(actor=nurse, booking=booking, reason="patient_request")
    with pytest.raises(InvalidTransition):
        checklist_update(actor=nurse, booking=booking, allergies_reviewed=True)
    assert not CaseChecklist.objects.exists()


def test_lab_and_imaging_records_are_validated_and_audited(clinic, nurse):
    patient = clinic.patients[0]
    lab = lab_result_record(
        actor=nurse,
        patient=patient,
        test="inr",
        value=Decimal("1.20"),
        taken_at=dt.datetime(2027, 1, 4, 11, tzinfo=dt.UTC),
    )
    assert (lab.test, lab.value) == ("inr", Decimal("1.20"))
    assert AuditEvent.objects.get(action="lab_result.create").details == {"patient": patient.pk, "test": "inr"}
    with pytest.raises(BookingInvalid) as refused:
        lab_result_record(
            actor=nurse,
            patient=patient,
            test="sodium",
            value=Decimal("-1"),
            taken_at=dt.datetime(2027, 1, 5, tzinfo=dt.UTC),
        )
    assert [p.code for p in refused.value.problems] == ["invalid_choice", "invalid_value", "in_future"]
    study = imaging_study_record(actor=nurse, patient=patient, modality="ct", performed_on=dt.date(2027, 1, 3))
    assert AuditEvent.objects.get(action="imaging_study.create").details == {"patient": patient.pk, "modality": "ct"}
    with pytest.raises(BookingInvalid) as refused:
        imaging_study_record(actor=nurse, patient=patient, modality="xray", performed_on=dt.date(2027, 1, 9))
    assert [p.code for p in refused.value.problems] == ["invalid_choice", "in_future"]
    assert list(LabResult.objects.all()) == [lab]
    assert list(ImagingStudy.objects.all()) == [study]


def test_an_alert_is_resolved_once(clinic, nurse):
    alert = Alert.objects.create(site=clinic.site, kind="leg_clash", message="Booking 1 ran late.")
    resolved = alert_resolve(actor=nurse, alert=alert)
    assert (resolved.resolved_at, resolved.resolved_by) == (dt.datetime(2027, 1, 4, 12, tzinfo=dt.UTC), nurse)
    with pytest.raises(InvalidTransition):
        alert_resolve(actor=nurse, alert=alert)
    assert AuditEvent.objects.filter(action="alert.resolve").count() == 1
