"""HL7 v2.5.1 SIU out: each change of a case or a block becomes its SIU message (parsed at
strict validation by hl7apy and by python-hl7), sent over MLLP to a loopback listener that
acknowledges, rejects or drops the connection; messages arrive once each, in order per
appointment, and a listener that was down gets everything pending when it is back."""

from __future__ import annotations

import datetime as dt

import hl7
import pytest
import time_machine
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from interop.delivery import deliveries_run
from interop.models import Delivery, DeliveryStatus, Hl7Interface
from outbox.models import Alert, AlertKind
from procedure_day.services.transitions import booking_check_in, booking_no_show
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule, hold_confirm
from scheduling.services.downtime import downtime_create, downtime_delete
from tests.conftest import MONDAY, NOW, local
from tests.receivers import control_id, mllp_listener
from tests.servers import free_port

pytestmark = pytest.mark.django_db


def book(clinic, hour=9, patient=0, status="scheduled", **pins):
    return booking_create(
        actor=None,
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**pins)
        ),
        starts_at=local(MONDAY, hour),
        status=status,
    )


def interface(port: int) -> Hl7Interface:
    return Hl7Interface.objects.create(name="EHR", host="127.0.0.1", port=port, timeout_seconds=2)


def trigger(message: str) -> str:
    return message.split("\r")[0].split("|")[8].split("^")[1]


def strictly_parsed(message: str):
    parsed = parse_message(message, find_groups=True, validation_level=VALIDATION_LEVEL.STRICT)
    parsed.validate()
    return parsed


def later(seconds: int) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def test_every_change_is_its_siu_message_with_a_segment_per_leg(clinic):
    with mllp_listener() as listener:
        interface(listener.port)
        case = book(clinic)
        held = book(clinic, hour=13, patient=1, status="hold", recovery_bay=clinic.bays[1])
        booking_reschedule(actor=None, booking=case, starts_at=local(MONDAY, 10), pins=clinic.resources())
        hold_confirm(actor=None, booking=held)
        block = downtime_create(
            actor=None,
            data={
                "equipment": clinic.c_arms[1],
                "starts_at": local(MONDAY, 16),
                "ends_at": local(MONDAY, 17),
                "reason": "repair",
            },
        )
        downtime_delete(actor=None, downtime=block)
        booking_cancel(actor=None, booking=held, reason="patient_request")
        deliveries_run(now=later(1))
    messages = listener.received
    assert [trigger(m) for m in messages] == ["S12", "S13", "S12", "S23", "S24", "S15"]
    for message in messages:
        parsed = strictly_parsed(message)
        assert parsed.msh.msh_9.to_er7() == f"SIU^{trigger(message)}^SIU_S12"
        second = hl7.parse(message)
        assert str(second.segment("MSH")[10]) == control_id(message)
    moved = hl7.parse(messages[1])
    assert str(moved.segment("SCH")[1]) == f"{case.pk}^PAINSCHED"
    assert str(moved.segment("PID")[3]).startswith(clinic.patients[0].mrn)
    ail = {str(s[3]).split("^")[0]: (str(s[6]), str(s[9])) for s in moved.segments("AIL")}
    assert ail[f"room-{clinic.rooms[0].pk}"] == ("20270111100000-0600", "80")
    bay_start, bay_minutes = ail[f"bay-{clinic.bays[0].pk}"]
    assert bay_start > "20270111100000-0600"
    assert int(bay_minutes) >= 60
    assert "PHYS" in [str(s[4]).split("^")[0] for s in moved.segments("AIP")]
    assert len(moved.segments("AIG")) == 1
    assert str(moved.segment("AIS")[4]) == "20270111100000-0600"
    blocked = hl7.parse(messages[3])
    assert str(blocked.segment("AIG")[3]).startswith(f"equipment-{clinic.c_arms[1].pk}")
    assert str(blocked.segment("SCH")[25]).startswith("Blocked")
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 6


def test_status_changes_are_s14_and_a_no_show_is_s26(clinic):
    with mllp_listener() as listener:
        interface(listener.port)
        first = book(clinic)
        second = book(clinic, hour=13, patient=1, recovery_bay=clinic.bays[1])
        with time_machine.travel(local(MONDAY, 8, 35), tick=False):
            booking_check_in(actor=None, booking=first)
        with time_machine.travel(local(MONDAY, 13, 0), tick=False):
            booking_no_show(actor=None, booking=second)
        deliveries_run(now=later(1))
    assert [trigger(m) for m in listener.received] == ["S12", "S12", "S14", "S26"]
    assert str(hl7.parse(listener.received[3]).segment("SCH")[25]).startswith("Noshow")
    for message in listener.received:
        strictly_parsed(message)


def test_messages_arrive_once_each_in_order_per_appointment_through_drops_and_rejections(clinic):
    def answer(message: str, n: int) -> str:
        # The second message is read and the connection dropped: it is sent again, same MSH-10.
        return "drop" if n == 2 else "AA"

    with mllp_listener(answer=answer) as listener:
        interface(listener.port)
        case = book(clinic)
        other = book(clinic, hour=13, patient=1, recovery_bay=clinic.bays[1])
        booking_reschedule(actor=None, booking=case, starts_at=local(MONDAY, 10), pins=clinic.resources())
        booking_cancel(actor=None, booking=case, reason="patient_request")
        # The drop stops the run: the receiver may be going down.
        assert deliveries_run(now=later(1))["unreachable"] == 1
        assert len(listener.processed) == 1
        # The other case's messages do not wait for the dropped one; it waits for its backoff.
        deliveries_run(now=later(5))
        assert len(listener.processed) == 3
        for step in range(1, 12):
            deliveries_run(now=later(15 * step))
    ids = [control_id(m) for m in listener.processed]
    assert len(ids) == len(set(ids)) == 4
    dropped = control_id(listener.received[1])
    assert [control_id(m) for m in listener.received].count(dropped) == 2
    sch = [str(hl7.parse(m).segment("SCH")[1]).split("^")[0] for m in listener.processed]
    of_case = [
        trigger(m) for m, appointment in zip(listener.processed, sch, strict=True) if appointment == str(case.pk)
    ]
    assert of_case == ["S12", "S13", "S15"]
    assert sch.count(str(other.pk)) == 1


def test_an_error_ack_is_retried_and_a_rejection_is_parked_with_an_alert(clinic):
    answers = iter(["AE", "AE", "AA", "AR"])

    with mllp_listener(answer=lambda message, n: next(answers)) as listener:
        interface(listener.port)
        first = book(clinic)
        deliveries_run(now=later(1))
        deliveries_run(now=later(12))
        deliveries_run(now=later(40))
        delivered = Delivery.objects.get(event__booking=first)
        assert delivered.status == DeliveryStatus.DELIVERED
        assert [a.code for a in delivered.log.all()] == ["AE", "AE", "AA"]
        book(clinic, hour=13, patient=1, recovery_bay=clinic.bays[1])
        deliveries_run(now=later(60))
    parked = Delivery.objects.exclude(pk=delivered.pk).get()
    assert parked.status == DeliveryStatus.PARKED
    assert "rejected" in parked.last_error
    alert = Alert.objects.get(kind=AlertKind.INTERFACE_FAILED)
    assert clinic.patients[1].last_name not in alert.message
    assert str(parked.pk) in alert.message


def test_a_listener_that_comes_back_receives_everything_that_was_pending_in_order(clinic):
    port = free_port()
    interface(port)
    case = book(clinic)
    booking_reschedule(actor=None, booking=case, starts_at=local(MONDAY, 10), pins=clinic.resources())
    book(clinic, hour=13, patient=1, recovery_bay=clinic.bays[1])
    outcome = deliveries_run(now=later(1))
    assert outcome["unreachable"] == 1
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 3
    deliveries_run(now=later(15))
    with mllp_listener(port=port) as listener:
        deliveries_run(now=later(60))
    assert [trigger(m) for m in listener.received] == ["S12", "S13", "S12"]
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 3
    ids = [control_id(m) for m in listener.received]
    assert len(set(ids)) == 3


def test_holds_are_not_announced_until_confirmed(clinic):
    with mllp_listener() as listener:
        interface(listener.port)
        held = book(clinic, status="hold")
        booking_cancel(actor=None, booking=held, reason="patient_request")
        deliveries_run(now=later(1))
    assert listener.received == []


def test_long_or_awkward_text_still_makes_a_strictly_valid_message_with_identifiers_whole(clinic):
    patient = clinic.patients[0]
    patient.last_name = "Núñez-" + "X" * 74
    patient.first_name = "Zoë|^~\\&" + "Y" * 70
    patient.mrn = "M-" + "7" * 38
    patient.save()
    room = clinic.rooms[0]
    room.name = "Fluoroscopy suite " + "R" * 62
    room.save()
    with mllp_listener() as listener:
        hl7_interface = interface(listener.port)
        hl7_interface.sending_facility = "F" * 20
        hl7_interface.save()
        book(clinic)
        deliveries_run(now=later(1))
    (message,) = listener.received
    strictly_parsed(message)
    parsed = hl7.parse(message)
    # The identifier travels whole; the encoding characters in the name do not break fields.
    assert str(parsed.segment("PID")[3]).split("^")[0] == patient.mrn
    assert str(parsed.segment("PID")[5]).startswith("Núñez-XXX")
    assert str(parsed.segment("PID")[5]).split("^")[1].startswith("Zoë")
    assert str(parsed.segment("MSH")[4]) == "F" * 20
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_a_component_over_its_hl7_length_is_cut_to_fit_not_refused():
    from hl7apy.core import Message

    from interop.hl7 import _put

    message = Message("SIU_S12", version="2.5.1", validation_level=VALIDATION_LEVEL.STRICT)
    _put(message.msh, "msh_3", "A" * 30 + "^host^DNS")
    assert message.msh.msh_3.to_er7() == "A" * 20 + "^host^DNS"
    _put(message.msh, "msh_4", "CLINIC")
    assert message.msh.msh_4.to_er7() == "CLINIC"


def test_a_late_end_of_procedure_is_an_s14_with_the_legs_as_they_are_now(clinic):
    from procedure_day.services.late import booking_end_procedure
    from scheduling.models import Booking

    with mllp_listener() as listener:
        interface(listener.port)
        case = book(clinic)
        Booking.objects.filter(pk=case.pk).update(status="in_procedure", procedure_started_at=local(MONDAY, 9))
        case.refresh_from_db()
        with time_machine.travel(local(MONDAY, 10, 30), tick=False):
            booking_end_procedure(actor=None, booking=case)
        deliveries_run(now=later(1))
    assert [trigger(m) for m in listener.received] == ["S12", "S14"]
    strictly_parsed(listener.received[1])
    bay = next(s for s in hl7.parse(listener.received[1]).segments("AIL") if str(s[3]).startswith("bay-"))
    # The recovery bay now starts when the procedure ended, 10:30.
    assert str(bay[6]) == "20270111103000-0600"


def test_a_rejection_keeps_the_receivers_words_out_of_the_log_and_the_alert(clinic):
    patient = clinic.patients[0]

    def ack_quoting_the_patient(message: str, code: str) -> bytes:
        msh = message.split("\r")[0].split("|")
        text = f"MSH|^~\\&|EHR|H|{msh[2]}|{msh[3]}|20270101000000||ACK|A{msh[9]}|P|2.5.1\r"
        text += f"MSA|AR|{msh[9]}|Unknown patient {patient.last_name} MRN {patient.mrn}\r"
        return b"\x0b" + text.encode() + b"\x1c\r"

    with mllp_listener(answer=lambda message, n: "AR", ack_bytes=ack_quoting_the_patient) as listener:
        interface(listener.port)
        book(clinic)
        deliveries_run(now=later(1))
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PARKED
    stored = " ".join([delivery.last_error, *(a.detail for a in delivery.log.all())])
    stored += " " + Alert.objects.get(kind=AlertKind.INTERFACE_FAILED).message
    assert "AR" in delivery.last_error
    assert patient.last_name not in stored
    assert patient.mrn not in stored


def test_error_acks_not_unreachable_tries_count_toward_parking(clinic, settings):
    settings.HL7_MAX_ATTEMPTS = 2
    port = free_port()
    interface(port)
    book(clinic)
    for step in range(4):
        assert deliveries_run(now=later(1 + 3000 * step))["unreachable"] == 1
    answers = iter(["AE", "AA"])
    with mllp_listener(port=port, answer=lambda message, n: next(answers)):
        deliveries_run(now=later(20000))
        deliveries_run(now=later(24000))
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert [a.outcome for a in delivery.log.all()] == ["unreachable"] * 4 + ["retry", "delivered"]


def test_an_acknowledgement_trickled_past_the_timeout_is_no_acknowledgement():
    import socket
    import threading
    import time

    from interop import mllp

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def trickle() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            for _ in range(20):
                try:
                    connection.sendall(b"M")
                except OSError:  # the sender gave up and closed: as it should
                    return
                time.sleep(0.2)

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(mllp.NoAck):
        mllp.send("127.0.0.1", server.getsockname()[1], "MSH|^~\\&|A", timeout=1)
    assert time.monotonic() - started < 2
    server.close()
