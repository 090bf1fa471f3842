"""What the procedure day's outbox rows say, built when each is sent (registered with the
outbox). Staff email names the booking, the bay and times, never the patient."""

from __future__ import annotations

from datetime import datetime

from outbox.models import Channel, Notification
from outbox.registry import Message, NothingToSend, register
from procedure_day.kinds import ProcedureDayMessage
from scheduling.messages import API, active_booking, site_address
from scheduling.models import BookingStatus, LegRole


def _ready_for_discharge(notification: Notification, now: datetime) -> Message:
    booking = active_booking(notification, BookingStatus.READY_FOR_DISCHARGE)
    site = booking.site
    if notification.channel == Channel.SMS:
        # To the escort: no clinical detail, only that it is time to come.
        if not booking.patient.escort_phone:
            raise NothingToSend("no_phone")
        text = f"{site.name}: the person you are collecting is ready to go home. Please come to the recovery area."
        return Message(Channel.SMS, booking.patient.escort_phone, "", text)
    bay = next((leg for leg in booking.legs.all() if leg.role == LegRole.RECOVERY_BAY and leg.is_active), None)
    where = f" in {bay.bay}" if bay is not None and bay.bay is not None else ""
    at = booking.ready_for_discharge_at or now
    return Message(
        Channel.EMAIL,
        site_address(site),
        f"Booking {booking.pk} ready for discharge",
        f"Booking {booking.pk} ({booking.procedure_type.code}){where} reached the end of its minimum recovery "
        f"at {at.astimezone(site.zone):%H:%M}. Confirm the escort is present before discharge.\n\n"
        f"{API}/bookings/{booking.pk}/",
    )


def _recovery_clash(notification: Notification, now: datetime) -> Message:
    booking = notification.booking
    if booking is None:
        raise NothingToSend("subject_gone")
    body = (
        f"A late case pushes the recovery of booking {booking.pk} into another leg; see the site's open alerts."
        f"\n\n{API}/bookings/{booking.pk}/"
    )
    return Message(Channel.EMAIL, site_address(booking.site), f"Recovery clash: booking {booking.pk}", body)


for _kind, _builder in (
    (ProcedureDayMessage.READY_FOR_DISCHARGE, _ready_for_discharge),
    (ProcedureDayMessage.RECOVERY_CLASH, _recovery_clash),
):
    register(_kind.value, _kind.label, _builder)
