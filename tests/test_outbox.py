"""The outbox: rows written with the change, relayed by id, sent at most once."""

import datetime as dt

import pytest
import time_machine
from django.core import mail
from kombu.exceptions import OperationalError

from core.errors import SlotUnavailable
from outbox import tasks
from outbox.models import Alert, Notification
from outbox.registry import build_message
from outbox.relay import outbox_recover
from outbox.sending import LocmemSmsBackend
from patients.models import MedicationHold
from rooms.models import Downtime
from scheduling.models import Booking, ProcedureType
from scheduling.request import CaseRequest, pins_of
from scheduling.services import bookings as booking_services
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule
from scheduling.services.reminders import credential_warnings_enqueue, daily_lists_enqueue, follow_up_lists_enqueue
from staff.models import Credential
from tests import factories as f
from tests.api_helpers import client_for, persona_users, post
from tests.conftest import MONDAY, NOW, Clinic, local
from tests.factories import drug

NINE = local(MONDAY, 9)
TUESDAY = dt.date(2027, 1, 12)
SOON = local(NOW.date(), 13)  # seven hours after the frozen "now": every reminder is due at once


@pytest.fixture(autouse=True)
def sms_outbox(settings):
    settings.SMS_BACKEND = "outbox.sending.LocmemSmsBackend"
    LocmemSmsBackend.outbox.clear()
    yield LocmemSmsBackend.outbox
    LocmemSmsBackend.outbox.clear()


@pytest.fixture
def notify(clinic):
    clinic.site.notify_email = "desk@clinic.example"
    clinic.site.save()
    clinic.physicians[0].email = "reyes@clinic.example"
    clinic.physicians[0].save()
    return clinic


def book(clinic: Clinic, start: dt.datetime = NINE, patient: int = 0, **resources) -> Booking:
    return booking_create(
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**resources)
        ),
        actor=None,
        starts_at=start,
    )


def rows(booking: Booking) -> dict[str, Notification]:
    return {n.kind: n for n in Notification.objects.filter(booking=booking)}


def patient_identifiers(clinic: Clinic) -> list[str]:
    out = []
    for p in clinic.patients:
        out += [p.first_name, p.mrn, p.phone, p.escort_name, p.escort_phone]
    return [value for value in out if value]


def assert_no_patient_data(text: str, clinic: Clinic) -> None:
    leaked = [value for value in patient_identifiers(clinic) if value in text]
    assert leaked == [], leaked
    assert "Example" not in text  # every test patient's last name


# --- written with the booking ---------------------------------------------------------------


def test_a_booking_writes_its_reminders(clinic):
    booking = book(clinic)

    reminders = rows(booking)
    assert set(reminders) == {"prep_reminder", "day_before_reminder"}
    assert reminders["prep_reminder"].due_at == NINE - dt.timedelta(hours=48)
    assert reminders["day_before_reminder"].due_at == NINE - dt.timedelta(hours=24)
    assert reminders["prep_reminder"].dedupe_key == f"prep_reminder:booking:{booking.pk}"
    assert {(n.status, n.channel, n.site_id) for n in reminders.values()} == {("pending", "sms", clinic.site.pk)}


def test_reminders_commit_or_roll_back_with_the_booking(clinic, monkeypatch):
    def fail_after_the_writes(*args):
        assert Notification.objects.count() == 2
        raise RuntimeError("crash after the outbox rows were written")

    # Runs in the booking's transaction, once every row is written.
    monkeypatch.setattr(booking_services, "_remember_legs", fail_after_the_writes)
    with pytest.raises(RuntimeError):
        book(clinic)

    assert Booking.objects.count() == 0
    assert Notification.objects.count() == 0


def test_a_refused_booking_writes_no_reminders(clinic):
    book(clinic)
    with pytest.raises(SlotUnavailable):
        book(clinic, start=NINE + dt.timedelta(minutes=30), patient=1)
    assert Notification.objects.count() == 2


def test_a_reminder_already_late_is_due_now(clinic):
    booking = book(clinic, start=SOON)
    assert {n.due_at for n in rows(booking).values()} == {NOW}


def test_cancel_skips_pending_reminders(clinic):
    booking = book(clinic)
    booking_cancel(actor=None, booking=booking, reason="patient_request")
    assert {n.status for n in rows(booking).values()} == {"skipped"}


def test_reschedule_retimes_pending_reminders(clinic):
    booking = book(clinic)
    later = local(MONDAY, 13)
    booking_reschedule(actor=None, booking=booking, starts_at=later)

    reminders = rows(booking)
    assert len(reminders) == 2
    assert reminders["prep_reminder"].due_at == later - dt.timedelta(hours=48)
    assert reminders["day_before_reminder"].due_at == later - dt.timedelta(hours=24)


# --- the relay ------------------------------------------------------------------------------


@pytest.fixture
def published(monkeypatch):
    """Every publish the relay makes, without a broker."""
    calls: list[tuple[tuple, dict]] = []

    def fake_apply_async(*args, **kwargs):
        calls.append((args, kwargs))

    monkeypatch.setattr(tasks.send_notification, "apply_async", fake_apply_async)
    return calls


def test_the_relay_publishes_due_rows_by_id_only(clinic, published, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    due = book(clinic, start=SOON)
    not_due = book(clinic, start=NINE, patient=1)

    assert tasks.relay_outbox() == 2

    due_ids = sorted(n.pk for n in rows(due).values())
    assert sorted(kwargs["args"][0] for _, kwargs in published) == due_ids
    for _, kwargs in published:
        assert len(kwargs["args"]) == 1
        assert isinstance(kwargs["args"][0], int)
        assert kwargs["retry"] is False
        assert set(kwargs) == {"args", "connection", "retry"}
    assert {(n.status, n.queued_at) for n in rows(due).values()} == {("queued", NOW)}
    assert {n.status for n in rows(not_due).values()} == {"pending"}
    # Queued rows are not published again.
    assert tasks.relay_outbox() == 0
    assert len(published) == 2


def test_a_failed_publish_puts_the_rows_back(clinic, monkeypatch):
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")

    monkeypatch.setattr(tasks.send_notification, "apply_async", broker_down)
    booking = book(clinic, start=SOON)

    assert tasks.relay_outbox() == 0

    assert {(n.status, n.attempts, n.queued_at) for n in rows(booking).values()} == {("pending", 1, None)}
    assert {n.last_error for n in rows(booking).values()} == {"publish: OperationalError"}


def test_rows_committed_but_never_published_are_picked_up(clinic, published):
    """A web process killed right after its commit loses nothing: the row is the record."""
    booking = book(clinic, start=SOON)
    # A relay that marked rows queued and died before publishing.
    Notification.objects.update(status="queued", queued_at=NOW - dt.timedelta(minutes=11))

    assert outbox_recover(now=NOW) == (2, 0)
    assert tasks.relay_outbox() == 2
    assert {n.status for n in rows(booking).values()} == {"queued"}


# --- sending --------------------------------------------------------------------------------


def test_send_is_at_most_once(notify, sms_outbox):
    booking = book(notify, start=SOON)
    prep = rows(booking)["prep_reminder"]

    assert tasks.send_notification(prep.pk) == "sent"
    assert tasks.send_notification(prep.pk) == "already_handled"

    assert [m.notification_id for m in sms_outbox] == [prep.pk]
    prep.refresh_from_db()
    assert (prep.status, prep.attempts, prep.sent_at) == ("sent", 1, NOW)


def test_email_is_sent_once_with_its_id_in_a_header(notify):
    downtime = Downtime.objects.create(
        equipment=notify.c_arms[0], starts_at=NOW, ends_at=NOW + dt.timedelta(hours=1), reason="repair"
    )
    booking = book(notify)
    row = Notification.objects.create(
        kind="downtime_impact",
        dedupe_key="downtime_impact:test",
        booking=booking,
        site=notify.site,
        subject_id=downtime.pk,
        due_at=NOW,
    )
    tasks.send_notification(row.pk)
    tasks.send_notification(row.pk)

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["desk@clinic.example"]
    assert mail.outbox[0].extra_headers["X-Notification-Id"] == str(row.pk)


def test_the_prep_reminder_covers_driver_medicines_and_fasting(notify, sms_outbox):
    patient = notify.patients[0]
    MedicationHold.objects.create(patient=patient, drug=drug("clopidogrel"), last_dose_on=dt.date(2027, 1, 3))
    booking = book(notify, start=NINE)
    message = build_message(rows(booking)["prep_reminder"], now=NOW)

    assert message.channel == "sms"
    assert message.to == patient.phone
    assert "Main: your Vertebroplasty is on Monday 11 January at 09:00." in message.body
    assert "responsible adult to take you home" in message.body
    # The last dose (the 3rd) is behind the patient by now: they are told not to take it again.
    assert "Do not take Clopidogrel again before your procedure" in message.body
    assert "Eat nothing for 8 hours" in message.body
    assert "clear liquids are fine until 2 hours before" in message.body

    day_before = build_message(rows(booking)["day_before_reminder"], now=NOW)
    assert "Please arrive at 08:00." in day_before.body


def test_a_reminder_for_a_case_no_longer_scheduled_is_skipped(notify, sms_outbox):
    booking = book(notify, start=SOON)
    prep = rows(booking)["prep_reminder"]
    Notification.objects.filter(pk=prep.pk).update(status="queued")  # handed to the broker
    booking_cancel(actor=None, booking=booking, reason="no_driver")

    assert tasks.send_notification(prep.pk) == "skipped"
    assert sms_outbox == []


def test_a_patient_without_a_phone_is_skipped_not_failed(notify, sms_outbox):
    notify.patients[0].phone = ""
    notify.patients[0].save()
    booking = book(notify, start=SOON)
    prep = rows(booking)["prep_reminder"]

    assert tasks.send_notification(prep.pk) == "skipped"
    prep.refresh_from_db()
    assert (prep.status, prep.last_error) == ("skipped", "no_phone")


def test_a_send_that_never_connected_is_retried(notify, settings):
    booking = book(notify, start=NINE)
    row = rows(booking)["prep_reminder"]
    settings.SMS_BACKEND = "tests.test_outbox.RefusingSmsBackend"

    assert tasks.send_notification(row.pk) == "pending"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "not sent: SmsNotSent")
    # Past the retry window it fails, with an alert, rather than going out hours late.
    with time_machine.travel(row.due_at + dt.timedelta(hours=13), tick=False):
        assert tasks.send_notification(row.pk) == "failed"
    assert Alert.objects.filter(kind="delivery_unknown", booking=booking).count() == 1


def test_a_send_that_failed_midway_is_not_retried_and_raises_an_alert(notify, settings):
    booking = book(notify, start=SOON)
    row = rows(booking)["prep_reminder"]
    settings.SMS_BACKEND = "tests.test_outbox.BrokenSmsBackend"

    assert tasks.send_notification(row.pk) == "failed"
    assert tasks.send_notification(row.pk) == "already_handled"
    row.refresh_from_db()
    assert (row.status, row.last_error) == ("failed", "send: TimeoutError")
    [alert] = Alert.objects.filter(kind="delivery_unknown")
    assert alert.booking == booking
    assert_no_patient_data(alert.message, notify)


class RefusingSmsBackend:
    def send(self, *, notification_id, to, text):
        from outbox.sending import SmsNotSent

        raise SmsNotSent("gateway refused the connection")


class BrokenSmsBackend:
    def send(self, *, notification_id, to, text):
        raise TimeoutError("gateway stopped answering after the message")


def test_a_sender_that_stopped_midway_is_marked_unknown_not_resent(notify, sms_outbox):
    booking = book(notify, start=SOON)
    row = rows(booking)["prep_reminder"]
    Notification.objects.filter(pk=row.pk).update(status="sending", claimed_at=NOW)

    assert outbox_recover(now=NOW + dt.timedelta(minutes=14)) == (0, 0)
    assert outbox_recover(now=NOW + dt.timedelta(minutes=16)) == (0, 1)
    assert outbox_recover(now=NOW + dt.timedelta(minutes=17)) == (0, 0)

    row.refresh_from_db()
    assert row.status == "unknown"
    assert tasks.send_notification(row.pk) == "already_handled"
    assert sms_outbox == []
    [alert] = Alert.objects.filter(kind="delivery_unknown")
    assert (alert.site, alert.booking) == (notify.site, booking)
    assert_no_patient_data(alert.message, notify)


# --- periodic scans -------------------------------------------------------------------------


def test_credential_warnings_are_written_once_per_window(notify):
    tech = notify.techs[0]
    tech.email = "tia@clinic.example"
    tech.save()
    in_45 = f.CredentialFactory(staff=tech, kind="license", procedure_code="", expires_on=dt.date(2027, 2, 18))
    in_20 = f.CredentialFactory(staff=tech, kind="sedation", procedure_code="", expires_on=dt.date(2027, 1, 24))
    f.CredentialFactory(staff=tech, kind="other", procedure_code="", expires_on=dt.date(2027, 4, 4))
    f.CredentialFactory(staff=tech, kind="other", procedure_code="", expires_on=dt.date(2027, 1, 1))

    assert credential_warnings_enqueue(now=NOW) == 2
    assert credential_warnings_enqueue(now=NOW) == 0
    assert set(Notification.objects.values_list("dedupe_key", flat=True)) == {
        f"credential_expiry_60:credential:{in_45.pk}:2027-02-18",
        f"credential_expiry_30:credential:{in_20.pk}:2027-01-24",
    }
    # Sixteen days on, the first is inside 30 days too.
    assert credential_warnings_enqueue(now=NOW + dt.timedelta(days=16)) == 1
    assert credential_warnings_enqueue(now=NOW + dt.timedelta(days=16)) == 0

    row = Notification.objects.get(dedupe_key=f"credential_expiry_60:credential:{in_45.pk}:2027-02-18")
    assert tasks.send_notification(row.pk) == "sent"
    [message] = mail.outbox
    assert message.to == ["tia@clinic.example"]
    assert "expires on 18 February 2027, in 45 days" in message.body


def test_a_renewed_credential_is_not_warned_about_its_old_date(notify):
    credential = Credential.objects.filter(staff=notify.techs[0]).first()
    credential.expires_on = dt.date(2027, 2, 1)
    credential.save()
    notify.techs[0].email = "tia@clinic.example"
    notify.techs[0].save()
    credential_warnings_enqueue(now=NOW)
    credential.expires_on = dt.date(2029, 2, 1)
    credential.save()

    row = Notification.objects.get()
    assert tasks.send_notification(row.pk) == "skipped"
    assert mail.outbox == []


def test_daily_lists_once_per_physician_and_day_without_patient_names(notify):
    book(notify, start=NINE)
    book(notify, start=local(MONDAY, 13), patient=1, recovery_bay=notify.bays[1])
    book(notify, start=local(TUESDAY, 9), patient=2)

    assert daily_lists_enqueue(now=local(MONDAY, 5, 55)) == 0
    assert daily_lists_enqueue(now=local(MONDAY, 6, 5)) == 1
    assert daily_lists_enqueue(now=local(MONDAY, 6, 10)) == 0
    # Past the grace window a list is no longer worth sending.
    assert daily_lists_enqueue(now=local(MONDAY, 12)) == 0

    row = Notification.objects.get(kind="daily_list")
    physician = notify.physicians[0]
    assert row.dedupe_key == f"daily_list:staff:{physician.pk}:site:{notify.site.pk}:date:2027-01-11"
    assert row.due_at == local(MONDAY, 6)
    assert tasks.send_notification(row.pk) == "sent"
    [message] = mail.outbox
    assert message.to == ["reyes@clinic.example"]
    assert message.subject == "Your cases on Mon 11 Jan: 2"
    assert "First start: 09:00." in message.body
    assert "Rooms: Fluoro 1." in message.body
    assert "http://127.0.0.1:8000/day/?date=2027-01-11" in message.body
    assert_no_patient_data(message.subject + message.body, notify)


def test_follow_up_call_list_once_per_site_and_day(notify):
    first = book(notify, start=NINE)
    book(notify, start=local(MONDAY, 13), patient=1, recovery_bay=notify.bays[1])
    Booking.objects.filter(pk=first.pk).update(status="discharged", discharged_at=local(MONDAY, 12))
    tuesday_7 = local(TUESDAY, 7, 1)

    assert follow_up_lists_enqueue(now=local(TUESDAY, 6, 59)) == 0
    assert follow_up_lists_enqueue(now=tuesday_7) == 1
    assert follow_up_lists_enqueue(now=tuesday_7) == 0

    row = Notification.objects.get(kind="follow_up_calls")
    assert row.dedupe_key == f"follow_up_calls:site:{notify.site.pk}:date:2027-01-11"
    assert tasks.send_notification(row.pk) == "sent"
    [message] = mail.outbox
    assert message.to == ["desk@clinic.example"]
    assert message.subject == "Follow-up calls for Mon 11 Jan: 1"
    assert f"/api/v1/bookings/?site={notify.site.pk}&status=discharged" in message.body
    assert_no_patient_data(message.subject + message.body, notify)


def test_no_follow_up_list_for_a_day_without_discharges(notify):
    assert follow_up_lists_enqueue(now=local(TUESDAY, 7, 1)) == 0


# --- downtime -------------------------------------------------------------------------------


def test_downtime_on_a_c_arm_flags_every_case_it_hits(notify):
    hit = [book(notify, start=local(MONDAY, 8)), book(notify, start=local(MONDAY, 10), patient=1)]
    # The same hours on the other C-arm.
    spared = booking_create(
        request=CaseRequest(
            procedure_type=ProcedureType.objects.get(code="ESI-IL"),
            patient=notify.patients[2],
            pins=pins_of(
                {
                    "room": notify.rooms[1],
                    "c_arm": notify.c_arms[1],
                    "physician": notify.physicians[1],
                    "rad_tech": notify.techs[1],
                    "recovery_bay": notify.bays[2],
                }
            ),
        ),
        actor=None,
        starts_at=local(MONDAY, 8),
    )
    later = book(notify, start=local(MONDAY, 14), patient=3)
    scheduler = persona_users(notify)["scheduler"]
    body = {
        "equipment": notify.c_arms[0].pk,
        "starts_at": local(MONDAY, 7).isoformat(),
        "ends_at": local(MONDAY, 12).isoformat(),
        "reason": "qa",
    }

    response = post(client_for(scheduler), "/api/v1/downtime/", body)

    assert response.status_code == 201, response.json()
    downtime = Downtime.objects.get()
    alerts = Alert.objects.filter(kind="downtime_impact").order_by("booking__starts_at")
    assert [a.booking_id for a in alerts] == [b.pk for b in hit]
    notices = Notification.objects.filter(kind="downtime_impact").order_by("booking__starts_at")
    assert [n.dedupe_key for n in notices] == [f"downtime_impact:booking:{b.pk}:downtime:{downtime.pk}" for b in hit]
    assert not Notification.objects.filter(kind="downtime_impact", booking__in=[spared, later]).exists()
    for alert in alerts:
        assert "C-arm 1 is down 2027-01-11 07:00–12:00 (qa / physicist inspection)" in alert.message
        assert_no_patient_data(alert.message, notify)

    for notice in notices:
        assert tasks.send_notification(notice.pk) == "sent"
    assert [m.to for m in mail.outbox] == [["desk@clinic.example"]] * 2
    assert mail.outbox[0].subject == f"Downtime affects booking {hit[0].pk}"
    for message in mail.outbox:
        assert_no_patient_data(message.subject + message.body, notify)


def test_invalid_downtime_writes_nothing(notify):
    scheduler = persona_users(notify)["scheduler"]
    body = {
        "equipment": notify.c_arms[0].pk,
        "room": notify.rooms[0].pk,
        "starts_at": local(MONDAY, 7).isoformat(),
        "ends_at": local(MONDAY, 12).isoformat(),
        "reason": "qa",
    }
    book(notify)
    response = post(client_for(scheduler), "/api/v1/downtime/", body)
    assert response.status_code == 422
    assert response.json()["code"] == "rule_violated"
    assert not Downtime.objects.exists()
    assert not Alert.objects.exists()
    assert not Notification.objects.filter(kind="downtime_impact").exists()


# --- the recovery timer ---------------------------------------------------------------------


def test_the_recovery_timer_task_calls_the_workflow_service(monkeypatch, frozen_now):
    from procedure_day import tasks as day_tasks

    calls = []
    monkeypatch.setattr(day_tasks, "recovery_timers_run", lambda *, now: calls.append(now) or 3)

    assert day_tasks.run_recovery_timers() == 3
    assert calls == [NOW]


def test_the_beat_schedule_names_real_tasks(settings):
    from config.celery import app

    # What a worker does at start: import every installed app's tasks module.
    app.loader.import_default_modules()
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert names <= set(app.tasks)
    assert app.tasks["outbox.tasks.send_notification"].acks_late is True
    assert app.tasks["outbox.tasks.relay_outbox"].acks_late is False
