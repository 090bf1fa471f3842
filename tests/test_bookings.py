"""Booking services: all or nothing, audited, and every rule refused with a clear error."""

import datetime as dt

import pytest

from core.errors import BookingInvalid, InvalidTransition, SlotUnavailable
from core.models import AuditEvent
from rooms.models import Downtime
from scheduling.models import Allocation, Booking, ProcedureType
from scheduling.request import CaseRequest, pins_of
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule
from staff.models import Credential, TimeOff
from tests import factories as f
from tests.conftest import MONDAY, Clinic, local, overlapping_active_legs

NINE = local(MONDAY, 9)


def create(
    clinic: Clinic, start=NINE, patient=None, code="VP", resources=None, actor=None, levels=1, sedation=None, **kwargs
):
    request = CaseRequest(
        procedure_type=ProcedureType.objects.get(code=code),
        patient=patient or clinic.patients[0],
        levels=levels,
        sedation=sedation,
        pins=resources if resources is not None else clinic.resources(),
    )
    return booking_create(actor=actor, request=request, starts_at=start, **kwargs)


def assert_nothing_written() -> None:
    assert Booking.objects.count() == 0
    assert Allocation.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def refused(clinic: Clinic, **kwargs) -> list[str]:
    """The problem codes of a refused booking, after checking that nothing was written."""
    with pytest.raises(BookingInvalid) as caught:
        create(clinic, **kwargs)
    assert_nothing_written()
    return [p.code for p in caught.value.problems]


# --- create, cancel, reschedule -------------------------------------------------------------


def test_create_writes_every_leg_at_its_offset_and_an_audit_record(clinic):
    user = f.UserFactory(username="sched", groups=["scheduler"])
    booking = create(clinic, actor=user, levels=2)

    legs = {leg.role: leg for leg in booking.legs.all()}
    assert booking.status == "scheduled"
    assert booking.sedation == "moderate"
    assert booking.starts_at == NINE
    assert booking.arrival_at == NINE - dt.timedelta(minutes=60)
    assert booking.ends_at == NINE + dt.timedelta(minutes=90 + 120)
    assert (legs["room"].room, legs["room"].ends_at) == (clinic.rooms[0], NINE + dt.timedelta(minutes=110))
    assert (legs["physician"].staff, legs["physician"].starts_at) == (
        clinic.physicians[0],
        NINE + dt.timedelta(minutes=20),
    )
    assert legs["recovery_bay"].bay == clinic.bays[0]
    assert legs["recovery_bay"].starts_at == NINE + dt.timedelta(minutes=90)
    assert legs["patient"].patient == clinic.patients[0]
    assert set(legs) == {"patient", "room", "c_arm", "physician", "rad_tech", "sedation_nurse", "recovery_bay"}
    [event] = AuditEvent.objects.all()
    assert (event.actor, event.action, event.object_id) == (user, "booking.create", str(booking.pk))
    assert event.details["procedure_type"] == "VP"
    assert "first_name" not in str(event.details)


def test_a_clash_names_the_resource_and_window_and_writes_nothing(clinic):
    first = create(clinic)
    with pytest.raises(SlotUnavailable) as caught:
        create(clinic, start=NINE + dt.timedelta(minutes=30), patient=clinic.patients[1])
    conflicts = caught.value.conflicts
    room = next(c for c in conflicts if c["role"] == "room")
    assert room["resource"] == {"kind": "room", "id": clinic.rooms[0].pk, "name": "Fluoro 1"}
    assert room["clashing"]["booking"] == first.pk
    assert room["message"] == "Fluoro 1 is booked 09:00–10:20 (procedure room needed 09:30–10:50)."
    assert Booking.objects.count() == 1
    assert AuditEvent.objects.count() == 1


def test_back_to_back_cases_share_the_room(clinic):
    create(clinic)
    # The room is free at 10:20 (60 + 20 turnover); the bay is taken until 12:00, so use another.
    second = create(
        clinic,
        start=NINE + dt.timedelta(minutes=80),
        patient=clinic.patients[1],
        resources=clinic.resources(recovery_bay=clinic.bays[1]),
    )
    assert second.starts_at == local(MONDAY, 10, 20)
    assert overlapping_active_legs() == []


def test_cancel_frees_the_resources_and_needs_a_reason(clinic):
    user = f.UserFactory()
    booking = create(clinic)
    with pytest.raises(BookingInvalid) as caught:
        booking_cancel(actor=user, booking=booking, reason="bored")
    assert caught.value.problems[0].code == "invalid_reason"
    booking.refresh_from_db()
    assert booking.status == "scheduled"

    booking_cancel(actor=user, booking=booking, reason="no_driver", note="Daughter unavailable")
    booking.refresh_from_db()
    assert (booking.status, booking.cancel_reason) == ("cancelled", "no_driver")
    assert not booking.legs.filter(is_active=True).exists()
    assert AuditEvent.objects.filter(action="booking.cancel", actor=user).count() == 1
    again = create(clinic, patient=clinic.patients[1])
    assert again.starts_at == NINE


def test_cancelling_twice_is_an_invalid_transition(clinic):
    booking = create(clinic)
    booking_cancel(actor=None, booking=booking, reason="patient_request")
    with pytest.raises(InvalidTransition):
        booking_cancel(actor=None, booking=booking, reason="patient_request")
    assert AuditEvent.objects.filter(action="booking.cancel").count() == 1


def test_reschedule_moves_every_leg_and_keeps_the_resources(clinic):
    booking = create(clinic)
    moved = booking_reschedule(actor=None, booking=booking, starts_at=NINE + dt.timedelta(hours=3))
    active = moved.legs.filter(is_active=True)
    assert moved.starts_at == local(MONDAY, 12)
    assert active.count() == 7
    assert active.get(role="room").starts_at == local(MONDAY, 12)
    assert active.get(role="physician").staff == clinic.physicians[0]
    assert moved.legs.filter(is_active=False).count() == 7
    assert AuditEvent.objects.filter(action="booking.reschedule").count() == 1


def test_reschedule_may_overlap_its_own_old_window(clinic):
    booking = create(clinic)
    moved = booking_reschedule(actor=None, booking=booking, starts_at=NINE + dt.timedelta(minutes=15))
    assert moved.starts_at == local(MONDAY, 9, 15)
    assert overlapping_active_legs() == []


def test_reschedule_into_a_clash_keeps_the_old_legs(clinic):
    first = create(clinic)
    second = create(
        clinic,
        start=local(MONDAY, 13),
        patient=clinic.patients[1],
        resources=clinic.resources(recovery_bay=clinic.bays[1]),
    )
    with pytest.raises(SlotUnavailable):
        booking_reschedule(actor=None, booking=second, starts_at=NINE + dt.timedelta(minutes=10))
    second.refresh_from_db()
    assert second.starts_at == local(MONDAY, 13)
    assert second.legs.filter(is_active=True).count() == 7
    assert second.legs.filter(is_active=False).count() == 0
    assert first.legs.filter(is_active=True).count() == 7
    assert AuditEvent.objects.filter(action="booking.reschedule").count() == 0


def test_reschedule_with_another_room_pins_it(clinic):
    booking = create(clinic)
    moved = booking_reschedule(
        actor=None, booking=booking, starts_at=NINE, pins=pins_of({"room": clinic.rooms[1], "c_arm": clinic.c_arms[1]})
    )
    assert moved.legs.get(is_active=True, role="room").room == clinic.rooms[1]
    assert moved.legs.get(is_active=True, role="c_arm").equipment == clinic.c_arms[1]


# --- validation rules: each refused with its code, nothing written --------------------------


def test_naive_start_is_refused(clinic):
    assert refused(clinic, start=dt.datetime(2027, 1, 11, 9, 0)) == ["naive_datetime"]


def test_start_in_the_past_is_refused(clinic):
    assert refused(clinic, start=local(dt.date(2026, 12, 28), 9)) == ["starts_in_past"]


def test_room_outside_opening_hours_is_refused(clinic):
    assert "outside_opening_hours" in refused(clinic, start=local(MONDAY, 6, 30))


def test_patient_arriving_before_the_site_opens_is_refused(clinic):
    # A kyphoplasty at 08:00 asks the patient to arrive 90 minutes earlier, at 06:30.
    f.CredentialFactory(staff=clinic.physicians[0], procedure_code="KP")
    codes = refused(
        clinic, code="KP", start=local(MONDAY, 8), resources=clinic.resources(sedation_staff=clinic.anesthesia)
    )
    assert codes == ["arrival_outside_opening_hours"]


def test_recovery_past_closing_is_refused(clinic):
    # Room 16:00-17:20 is inside hours; the recovery bay would run 17:00-19:00, past 18:00.
    codes = refused(clinic, start=local(MONDAY, 16))
    assert "outside_opening_hours" in codes


def test_room_hours_of_its_own_override_the_site(clinic):
    f.OpeningHoursFactory(
        site=clinic.site, room=clinic.rooms[0], weekday=0, opens_at=dt.time(12), closes_at=dt.time(18)
    )
    assert refused(clinic) == ["outside_opening_hours"]


def test_weekend_is_outside_hours_and_shifts(clinic):
    codes = refused(clinic, start=local(dt.date(2027, 1, 16), 9))
    assert "outside_opening_hours" in codes
    assert "outside_shift" in codes


def test_staff_outside_their_shift_is_refused(clinic):
    clinic.physicians[0].shifts.filter(weekday=0).update(ends_at=dt.time(9, 30))
    assert refused(clinic) == ["outside_shift"]


def test_staff_on_time_off_is_refused(clinic):
    TimeOff.objects.create(staff=clinic.techs[0], starts_at=local(MONDAY, 8), ends_at=local(MONDAY, 9, 30))
    assert refused(clinic) == ["staff_time_off"]


def test_room_in_downtime_is_refused(clinic):
    Downtime.objects.create(
        room=clinic.rooms[0], starts_at=local(MONDAY, 9, 50), ends_at=local(MONDAY, 11), reason="repair"
    )
    assert refused(clinic) == ["resource_downtime"]


def test_c_arm_in_qa_is_refused_with_its_name_and_window(clinic):
    Downtime.objects.create(
        equipment=clinic.c_arms[0], starts_at=local(MONDAY, 7), ends_at=local(MONDAY, 14), reason="qa"
    )
    with pytest.raises(BookingInvalid) as caught:
        create(clinic)
    [problem] = caught.value.problems
    assert problem.code == "resource_downtime"
    assert problem.message == "C-arm 1 is in QA until 14:00 (C-arm needed 09:00–10:00)."
    assert_nothing_written()


def test_physician_without_the_privilege_is_refused(clinic):
    assert refused(clinic, resources=clinic.resources(physician=clinic.physicians[1])) == ["physician_not_privileged"]


def test_physician_with_an_expired_privilege_is_refused(clinic):
    Credential.objects.filter(staff=clinic.physicians[0], procedure_code="VP").update(expires_on=dt.date(2027, 1, 10))
    assert refused(clinic) == ["physician_not_privileged"]


def test_tech_with_an_expired_fluoroscopy_permit_is_refused(clinic):
    Credential.objects.filter(staff=clinic.techs[0]).update(expires_on=dt.date(2027, 1, 10))
    assert refused(clinic) == ["tech_credential_invalid"]


def test_tech_with_a_permit_from_another_state_is_refused(clinic):
    Credential.objects.filter(staff=clinic.techs[0]).update(jurisdiction="CA")
    assert refused(clinic) == ["tech_credential_invalid"]


def test_permit_valid_on_the_local_day_counts(clinic):
    # 18:30 local on the 11th is already the 12th in UTC; the permit ends on the 11th, local.
    Credential.objects.filter(staff=clinic.techs[0]).update(expires_on=dt.date(2027, 1, 11))
    clinic.site.opening_hours.update(closes_at=dt.time(23))
    for member in [clinic.physicians[0], clinic.techs[0], clinic.nurses[0]]:
        member.shifts.update(ends_at=dt.time(23))
    booking = create(clinic, start=local(MONDAY, 18, 30))
    assert booking.starts_at.astimezone(dt.UTC).date() == dt.date(2027, 1, 11) + dt.timedelta(days=1)


def test_room_without_the_capability_is_refused(clinic):
    clinic.rooms[1].capabilities = ["fluoroscopy"]
    clinic.rooms[1].save()
    codes = refused(clinic, resources=clinic.resources(room=clinic.rooms[1], c_arm=clinic.c_arms[1]))
    assert codes == ["room_lacks_capability"]


def test_c_arm_fixed_in_another_room_is_refused(clinic):
    assert refused(clinic, resources=clinic.resources(room=clinic.rooms[1])) == ["equipment_not_in_room"]


def test_mobile_c_arm_may_be_used_in_any_room_of_the_site(clinic):
    booking = create(clinic, resources=clinic.resources(room=clinic.rooms[1], c_arm=clinic.c_arms[1]))
    assert booking.legs.get(role="c_arm").equipment == clinic.c_arms[1]


def test_rf_generator_named_as_c_arm_is_refused(clinic):
    assert refused(clinic, resources=clinic.resources(c_arm=clinic.rf_generator)) == ["wrong_resource_kind"]


def test_too_many_levels_is_refused(clinic):
    assert refused(clinic, levels=4) == ["levels_out_of_range"]


def test_sedation_the_procedure_does_not_allow_is_refused(clinic):
    assert refused(clinic, sedation="general") == ["sedation_not_allowed"]


def test_a_tech_named_as_physician_is_refused(clinic):
    resources = clinic.resources(physician=clinic.techs[1])
    assert refused(clinic, resources=resources) == ["wrong_resource_kind"]


def test_a_nurse_without_sedation_training_is_refused(clinic):
    assert refused(clinic, resources=clinic.resources(sedation_staff=clinic.nurses[1])) == ["not_sedation_capable"]


def test_kyphoplasty_under_mac_needs_the_anesthesia_provider(clinic):
    f.CredentialFactory(staff=clinic.physicians[0], procedure_code="KP")
    assert refused(clinic, code="KP") == ["wrong_resource_kind"]
    booking = create(clinic, code="KP", resources=clinic.resources(sedation_staff=clinic.anesthesia))
    assert booking.legs.get(role="anesthesia").staff == clinic.anesthesia


def test_an_open_role_is_filled_by_the_engine(clinic):
    create(clinic)  # holds Bay 1 from 10:00 to 12:00
    second = create(
        clinic,
        start=NINE + dt.timedelta(minutes=80),
        patient=clinic.patients[1],
        resources=clinic.resources(recovery_bay=None),
    )
    assert second.legs.get(role="recovery_bay").bay == clinic.bays[1]


def test_unnamed_roles_are_all_picked_and_pins_are_kept(clinic):
    booking = create(clinic, resources={"room": clinic.rooms[1].pk})
    legs = {leg.role: leg for leg in booking.legs.all()}
    assert legs["room"].room == clinic.rooms[1]
    assert legs["c_arm"].equipment == clinic.c_arms[1]  # C-arm 1 is fixed in the other room
    assert legs["physician"].staff == clinic.physicians[0]  # the only one privileged for VP
    assert legs["sedation_nurse"].staff == clinic.nurses[0]  # the only sedation-capable nurse
    assert overlapping_active_legs() == []


def test_when_nothing_fits_the_reasons_are_given_and_nothing_written(clinic):
    create(clinic)
    with pytest.raises(SlotUnavailable) as caught:
        create(clinic, start=NINE + dt.timedelta(minutes=10), patient=clinic.patients[1], resources={})
    messages = [c["message"] for c in caught.value.conflicts]
    assert "Dr. Ana Reyes is booked 09:20–10:00 (physician needed 09:30–10:10)." in messages
    assert Booking.objects.count() == 1


def test_one_person_in_two_roles_is_refused(clinic):
    clinic.techs[0].role = "nurse"
    codes = refused(clinic, resources=clinic.resources(rad_tech=clinic.nurses[0]))
    assert sorted(codes) == ["resource_reused", "wrong_resource_kind"]


def test_inactive_room_is_refused(clinic):
    clinic.rooms[0].is_active = False
    clinic.rooms[0].save()
    assert refused(clinic) == ["resource_inactive"]


def test_resource_of_another_site_is_refused(clinic):
    other = f.BayFactory(site=f.SiteFactory(name="North", code="north"))
    assert refused(clinic, resources=clinic.resources(recovery_bay=other)) == ["wrong_site"]


def test_every_problem_is_reported_at_once(clinic):
    clinic.techs[0].credentials.update(expires_on=dt.date(2026, 1, 1))
    codes = refused(clinic, resources=clinic.resources(physician=clinic.physicians[1], room=clinic.rooms[1]))
    assert sorted(codes) == ["equipment_not_in_room", "physician_not_privileged", "tech_credential_invalid"]


def test_a_patient_is_never_booked_twice_at_once(clinic):
    create(clinic)
    other_room = clinic.resources(
        room=clinic.rooms[1],
        c_arm=clinic.c_arms[1],
        physician=clinic.physicians[0],
        rad_tech=clinic.techs[1],
        sedation_staff=clinic.nurses[0],
        recovery_bay=clinic.bays[1],
    )
    with pytest.raises(SlotUnavailable) as caught:
        # A different physician is not free either, so use the same nurse; the patient clash
        # is reported with the rest and never names the patient.
        create(clinic, start=local(MONDAY, 11, 30), resources=other_room)
    patient_clash = [c for c in caught.value.conflicts if c["role"] == "patient"]
    assert patient_clash
    assert patient_clash[0]["resource"]["name"] == "the patient"
    assert patient_clash[0]["message"].startswith("The patient already has a case 08:00–12:00")
    assert Booking.objects.count() == 1
