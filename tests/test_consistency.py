"""The callers of the rulebook agree, over generated clinics and patients.

Each example builds a clinic (rooms with and without capabilities, fixed and mobile C-arms,
recovery bays, physicians with privileges that may lapse, techs with permits of this state,
another or none, nurses who may or may not sedate, an anesthesia provider and a device rep or
not, shifts, time off, downtime, cases already booked, the drug list's days edited) and patients
on holds of several drugs, then asks, through the API:

- whenever the search offers a start, booking it succeeds, pinned to the offered resources and
  with only the searched pins, and a case booked at an offer moves to a start the search
  offers once it is booked;
- a booking at any start with any pins succeeds exactly when the reasons endpoint gives no
  reason for the same request, and when refused it names the same problems;
- on the day of the case, the gate's hold item agrees with the booking rule: the booking rule
  asks for an override exactly when the gate shows the hold overridden, and the gate never fails
  a case the booking rule let through.

Every example runs in a transaction that is rolled back, so examples do not see each other.
``CONSISTENCY_EXAMPLES`` sets their number (300 unless set).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import BookingInvalid, SlotUnavailable
from patients.models import Drug, MedicationHold
from rooms.models import Downtime, Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.catalogue import DEFAULTS
from scheduling.models import ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from staff.models import Credential, Shift, StaffMember, TimeOff
from tests import factories as f
from tests.api_helpers import client_for, post
from tests.conftest import MONDAY

EXAMPLES = int(os.environ.get("CONSISTENCY_EXAMPLES", "300"))
ZONE = ZoneInfo("America/Chicago")
DAYS = 3  # Monday to Wednesday
LAST_DAY = MONDAY + dt.timedelta(days=DAYS - 1)
CODES = ["VP", "KP", "ESI-IL", "ESI-TF", "MBB", "RFA", "SCS-T"]
DRUGS = ["warfarin", "apixaban", "clopidogrel", "ticagrelor", "aspirin-secondary", "enoxaparin-therapeutic", "naproxen"]
SEDATIONS = [None, "local", "moderate", "mac", "general"]
SEDATION_ALLOWED = {row["code"]: row["sedation_allowed"] for row in DEFAULTS}
CAPABILITIES = ["fluoroscopy", "sterile_field", "anesthesia"]
HOURS = [(7, 18), (7, 12), (12, 18), (9, 16)]
PIN_KINDS = {
    "room": "rooms",
    "c_arm": "c_arms",
    "rf_generator": "rf",
    "physician": "physicians",
    "rad_tech": "techs",
    "sedation_staff": "sedation",
    "device_rep": "reps",
    "recovery_bay": "bays",
}


def local(day: dt.date, minutes: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=ZONE) + dt.timedelta(minutes=minutes)


# --- what is generated ----------------------------------------------------------------------


def mostly(usual: Any, other: st.SearchStrategy[Any], odds: int = 12) -> st.SearchStrategy[Any]:
    """``usual`` about ``odds`` times in ``odds + 1``, otherwise a draw of ``other``: each of the
    many things a case needs is usually there, so that offers and bookings happen often enough
    to compare. (The odd one out is a middle value: generation favours the ends of a range.)"""
    return st.integers(0, odds).flatmap(lambda n: other if n == odds // 2 else st.just(usual))


day_offsets = st.integers(0, DAYS - 1)
weekdays = mostly(set(range(DAYS)), st.sets(st.integers(0, DAYS - 1), max_size=DAYS))
hours = mostly(HOURS[0], st.sampled_from(HOURS))
# An interval inside the clinic day: a start minute and a length.
blocks = st.tuples(day_offsets, st.integers(7 * 60, 16 * 60).map(lambda m: m - m % 15), st.sampled_from([30, 90, 240]))


@st.composite
def staff(draw: Any, *, credential: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "weekdays": draw(weekdays),
        "hours": draw(hours),
        "credential": None if credential is None else draw(credential),
        **{name: draw(strategy) for name, strategy in extra.items()},
    }


privileges = mostly(
    dict.fromkeys(CODES),
    st.dictionaries(st.sampled_from(CODES), st.one_of(st.none(), day_offsets), max_size=len(CODES)),
    4,
)
permits = mostly("TX", st.sampled_from(["TX-lapsing", "OK", None]))


def holds(min_size: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        st.sampled_from(DRUGS),
        st.fixed_dictionaries(
            {
                # Days before Monday (a week after "now": a last dose planned ahead, or taken),
                # or not recorded (still taking it).
                "last_dose": st.one_of(st.integers(-12, 1), st.none()),
                "days": st.one_of(st.none(), st.integers(0, 8)),
            }
        ),
        min_size=min_size,
        max_size=3,
    )


@st.composite
def clinics(draw: Any) -> dict[str, Any]:
    subsets = st.sets(st.sampled_from(CAPABILITIES)).map(sorted)
    first = {"capabilities": draw(mostly(CAPABILITIES, subsets, 4)), "hours": draw(mostly(None, hours, 4))}
    # Other rooms usually have a sterile field under fluoroscopy, and anaesthesia or not.
    others = st.fixed_dictionaries(
        {
            "capabilities": st.tuples(mostly(CAPABILITIES[:2], subsets), st.booleans()).map(
                lambda c: sorted({*c[0], "anesthesia"} if c[1] else set(c[0]) - {"anesthesia"})
            ),
            "hours": mostly(None, hours, 2),
        }
    )
    rooms = [first, *draw(st.lists(others, min_size=draw(mostly(1, st.just(0))), max_size=2))]
    return {
        "closes": draw(st.sampled_from([16, 18])),
        "rooms": rooms,
        "c_arms": draw(
            st.lists(
                st.one_of(st.none(), st.integers(0, len(rooms) - 1)), min_size=draw(mostly(1, st.just(0))), max_size=2
            )
        ),
        "rf": draw(mostly(1, st.just(0))),
        "bays": draw(st.integers(draw(mostly(1, st.just(0))), 2)),
        "physicians": draw(st.lists(staff(credential=privileges), min_size=1, max_size=2)),
        "techs": draw(st.lists(staff(credential=permits), min_size=draw(mostly(1, st.just(0))), max_size=2)),
        "nurses": draw(
            st.lists(
                staff(sedation_capable=mostly(True, st.just(False))), min_size=draw(mostly(1, st.just(0))), max_size=2
            )
        ),
        "anesthesia": draw(st.lists(staff(), min_size=draw(mostly(1, st.just(0))), max_size=1)),
        "reps": draw(st.lists(staff(), min_size=draw(mostly(1, st.just(0))), max_size=1)),
        "time_off": draw(st.lists(st.tuples(st.integers(0, 20), blocks), max_size=2)),
        "downtime": draw(st.lists(st.tuples(st.integers(0, 20), blocks), max_size=2)),
        "booked": draw(st.lists(st.tuples(st.sampled_from(["VP", "ESI-IL"]), blocks), max_size=2)),
        # The drug list is the clinic's to edit: one drug's days at one bleeding risk.
        "drug_edit": draw(
            st.one_of(
                st.none(),
                st.tuples(st.sampled_from(DRUGS), st.sampled_from(["high", "intermediate", "low"]), st.integers(0, 7)),
            )
        ),
        "holds": draw(holds(draw(mostly(1, st.just(0), 3)))),
    }


@st.composite
def cases(draw: Any) -> dict[str, Any]:
    # Vertebroplasty and kyphoplasty first, as in the clinic; the epidurals are the cases at
    # intermediate bleeding risk.
    code = draw(st.sampled_from(["VP", "KP", "ESI-IL", *CODES]))
    return {
        "code": code,
        "levels": draw(mostly(1, st.integers(1, 4), 3)),
        # The procedure's default, one it allows, any, or general anaesthesia (which needs its
        # own kind of room and provider).
        "sedation": draw(
            st.one_of(
                st.none(), st.sampled_from(SEDATION_ALLOWED[code]), st.sampled_from(SEDATIONS), st.just("general")
            )
        ),
        "with_patient": draw(st.booleans()),
        # Pins by role: an index into the clinic's resources of that kind, or none.
        "pins": draw(st.dictionaries(st.sampled_from(sorted(PIN_KINDS)), st.integers(0, 2), max_size=3)),
        "start": (draw(day_offsets), draw(st.integers(6 * 60, 17 * 60 + 55).map(lambda m: m - m % 5))),
        # Near a start the search offered (minutes off it, and which of its resources are kept
        # as pins): where the rules are closest to the edge.
        "near": draw(st.one_of(st.none(), st.integers(-60, 60))),
        # Minutes between the search's starts: wide ones spread its offers over the days.
        "grid": draw(st.sampled_from([5, 30, 60])),
        # Where a booked case is moved to: the last day, from this time of day.
        "move_after": draw(st.sampled_from([None, "12:00", "14:00"])),
        # One offered resource swapped for another of its kind (the room, and one more role).
        "swap": (draw(st.sampled_from(sorted(PIN_KINDS))), draw(st.integers(1, 2))),
        "keep": draw(st.sets(st.sampled_from(sorted(PIN_KINDS)), max_size=4)),
    }


# --- the clinic in the database -------------------------------------------------------------


@dataclass
class Built:
    site: Site
    patient: Any  # on the generated holds
    plain: Any  # on none
    kinds: dict[str, list[int]] = field(default_factory=dict)

    def pins(self, wanted: dict[str, int]) -> dict[str, int]:
        chosen = {}
        for pin, index in wanted.items():
            ids = self.kinds[PIN_KINDS[pin]]
            if ids:
                chosen[pin] = ids[index % len(ids)]
        return chosen


def _shifts(member: StaffMember, site: Site, spec: dict[str, Any]) -> None:
    start, end = spec["hours"]
    for weekday in spec["weekdays"]:
        Shift.objects.create(staff=member, site=site, weekday=weekday, starts_at=dt.time(start), ends_at=dt.time(end))


def _person(role: str, n: int, site: Site, spec: dict[str, Any], **fields: Any) -> StaffMember:
    member = StaffMember.objects.create(role=role, first_name=role.title(), last_name=str(n), **fields)
    _shifts(member, site, spec)
    return member


def build(spec: dict[str, Any]) -> Built:
    site = Site.objects.create(name="Generated", code="generated", timezone="America/Chicago", jurisdiction="TX")
    for weekday in range(DAYS):
        OpeningHours.objects.create(site=site, weekday=weekday, opens_at=dt.time(7), closes_at=dt.time(spec["closes"]))
    rooms = []
    for n, room_spec in enumerate(spec["rooms"]):
        room = ProcedureRoom.objects.create(site=site, name=f"Room {n}", capabilities=room_spec["capabilities"])
        if room_spec["hours"] is not None:
            opens, closes = room_spec["hours"]
            for weekday in range(DAYS):
                OpeningHours.objects.create(
                    site=site, room=room, weekday=weekday, opens_at=dt.time(opens), closes_at=dt.time(closes)
                )
        rooms.append(room)
    c_arms = [
        Equipment.objects.create(
            site=site, kind="c_arm", name=f"C-arm {n}", room=None if fixed is None else rooms[fixed]
        )
        for n, fixed in enumerate(spec["c_arms"])
    ]
    rf = [Equipment.objects.create(site=site, kind="rf_generator", name=f"RF {n}") for n in range(spec["rf"])]
    bays = [RecoveryBay.objects.create(site=site, name=f"Bay {n}") for n in range(spec["bays"])]

    physicians = []
    for n, member_spec in enumerate(spec["physicians"]):
        member = _person("physician", n, site, member_spec)
        for code, lapses in member_spec["credential"].items():
            expires = None if lapses is None else MONDAY + dt.timedelta(days=lapses)
            Credential.objects.create(
                staff=member, kind="privilege", procedure_code=code, valid_from=dt.date(2020, 1, 1), expires_on=expires
            )
        physicians.append(member)
    techs = []
    for n, member_spec in enumerate(spec["techs"]):
        member = _person("rad_tech", n, site, member_spec)
        permit = member_spec["credential"]
        if permit is not None:
            Credential.objects.create(
                staff=member,
                kind="fluoroscopy",
                jurisdiction=permit.split("-")[0],
                valid_from=dt.date(2020, 1, 1),
                expires_on=MONDAY + dt.timedelta(days=1) if permit.endswith("lapsing") else None,
            )
        techs.append(member)
    nurses = [
        _person("nurse", n, site, s, sedation_capable=s["sedation_capable"]) for n, s in enumerate(spec["nurses"])
    ]
    anesthesia = [_person("anesthesia", n, site, s) for n, s in enumerate(spec["anesthesia"])]
    reps = [_person("device_rep", n, site, s) for n, s in enumerate(spec["reps"])]
    people = [*physicians, *techs, *nurses, *anesthesia, *reps]

    for index, (day, minute, length) in spec["time_off"]:
        if people:
            start = local(MONDAY + dt.timedelta(days=day), minute)
            TimeOff.objects.create(
                staff=people[index % len(people)], starts_at=start, ends_at=start + dt.timedelta(minutes=length)
            )
    things: list[tuple[str, Any]] = [("room", r) for r in rooms] + [("equipment", e) for e in [*c_arms, *rf]]
    for index, (day, minute, length) in spec["downtime"]:
        column, thing = things[index % len(things)]
        start = local(MONDAY + dt.timedelta(days=day), minute)
        Downtime.objects.create(
            **{column: thing}, starts_at=start, ends_at=start + dt.timedelta(minutes=length), reason="maintenance"
        )

    if spec["drug_edit"] is not None:
        code, risk, days = spec["drug_edit"]
        Drug.objects.filter(code=code).update(**{f"hold_days_{risk}": days})
    patient = f.PatientFactory()
    for code, hold in spec["holds"].items():
        last = hold["last_dose"]
        MedicationHold.objects.create(
            patient=patient,
            drug=Drug.objects.get(code=code),
            hold_days=hold["days"],
            last_dose_on=None if last is None else MONDAY + dt.timedelta(days=last),
        )
    # Cases already on the books, wherever the engine puts them (or nowhere, if they do not fit).
    for code, (day, minute, _) in spec["booked"]:
        try:
            with transaction.atomic():
                booking_create(
                    actor=None,
                    request=CaseRequest(
                        procedure_type=ProcedureType.objects.get(code=code), patient=f.PatientFactory()
                    ),
                    starts_at=local(MONDAY + dt.timedelta(days=day), minute),
                )
        except (BookingInvalid, SlotUnavailable):
            continue
    sedation = [*nurses, *anesthesia]
    kinds = {
        "rooms": rooms,
        "c_arms": c_arms,
        "rf": rf,
        "physicians": physicians,
        "techs": techs,
        "sedation": sedation,
        "reps": reps,
        "bays": bays,
    }
    return Built(site, patient, f.PatientFactory(), {name: [row.pk for row in rows] for name, rows in kinds.items()})


# --- asking the API -------------------------------------------------------------------------


@contextmanager
def undone():
    """A request whose writes are rolled back after it answers."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def case_query(case: dict[str, Any], built: Built, pins: dict[str, int]) -> dict[str, Any]:
    query: dict[str, Any] = {"procedure_type": case["code"], "levels": case["levels"], **pins}
    if case["sedation"] is not None:
        query["sedation"] = case["sedation"]
    if case["with_patient"]:
        query["patient"] = built.patient.pk
    return query


def book(client: Any, body: dict[str, Any]) -> Any:
    return post(client, "/api/v1/bookings/", {k: v for k, v in body.items() if v is not None})


def codes_of(response: Any) -> list[str]:
    """The problem codes of a refused request: a rule broken (422) or other cases in the way (409)."""
    assert response.status_code in (409, 422), response.json()
    body = response.json()
    return sorted({e["code"] for e in body["errors" if response.status_code == 422 else "conflicts"]})


def reason_codes(client: Any, query: dict[str, Any]) -> list[str]:
    """The reasons endpoint's codes; a request no start could satisfy (levels the procedure
    does not allow, say) is refused whole with its problems."""
    response = client.get("/api/v1/availability/reasons/", query)
    if response.status_code == 422:
        return codes_of(response)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["feasible"] == (not body["reasons"])
    return sorted({r["code"] for r in body["reasons"]})


def slot_pins(slot: dict[str, Any]) -> dict[str, int]:
    from scheduling.legroles import LEG_ROLES

    return {LEG_ROLES[leg["role"]].pin: leg["resource"]["id"] for leg in slot["legs"] if leg["role"] != "patient"}


def check_offers_book(client: Any, case: dict[str, Any], built: Built, pins: dict[str, int]) -> list[dict[str, Any]]:
    """Every start the search offers books, with the offered resources and with the searched
    pins alone. Returns the offers."""
    query = case_query(case, built, pins)
    response = client.get(
        "/api/v1/availability/",
        {**query, "from": MONDAY.isoformat(), "to": LAST_DAY.isoformat(), "limit": 3, "grid": case["grid"]},
    )
    # A search without the patient offers what the resources allow, for a patient on no hold.
    body = {**query, "patient": (built.patient if case["with_patient"] else built.plain).pk}
    if response.status_code == 422:
        # Whatever the start, the case is not one that can be booked: the reasons and the
        # booking say so with the same words.
        day, minute = case["start"]
        at = {**body, "start": local(MONDAY + dt.timedelta(days=day), minute).isoformat()}
        assert reason_codes(client, at) == codes_of(response)
        with undone():
            assert codes_of(book(client, at)) == codes_of(response)
        return []
    assert response.status_code == 200, response.json()
    slots = response.json()["results"]
    for slot in slots:
        for pinned in (slot_pins(slot), pins):
            with undone():
                answer = book(client, {**body, **pinned, "start": slot["start"]})
                assert answer.status_code == 201, (slot, pinned, answer.json())
                assert answer.json()["start"] == slot["start"]
    if slots:
        # Booked at the first offer, the case moves to a start the search then offers later in
        # the window (another day, perhaps the afternoon, other people on shift): the move
        # releases the case's own legs, so it succeeds, the engine picking again where needed.
        with undone():
            first = book(client, {**body, **pins, "start": slots[0]["start"]})
            assert first.status_code == 201, first.json()
            later = {"from": LAST_DAY.isoformat(), "to": LAST_DAY.isoformat(), "limit": 1}
            if case["move_after"] is not None:
                later["earliest"] = case["move_after"]
            target = client.get("/api/v1/availability/", {**query, "patient": body["patient"], **later})
            assert target.status_code == 200, target.json()
            for offer in target.json()["results"]:
                url = f"/api/v1/bookings/{first.json()['id']}/reschedule/"
                moved = post(client, url, {**pins, "start": offer["start"]})
                assert moved.status_code == 200, (offer, pins, moved.json())
                assert moved.json()["start"] == offer["start"]
    return slots


def probe(client: Any, case: dict[str, Any], built: Built, start: str, pins: dict[str, int]) -> bool:
    """A booking succeeds exactly when the reasons endpoint has none for the same request, and
    a refusal names the problems the reasons name. Returns whether it booked."""
    # The booking is always for the patient; the reasons are asked the same way.
    query = {**case_query({**case, "with_patient": True}, built, pins), "start": start}
    codes = reason_codes(client, query)
    with undone():
        answer = book(client, query)
    if not codes:
        assert answer.status_code == 201, (query, answer.json())
        return True
    assert codes_of(answer) == codes, (query, codes, answer.json())
    return False


def check_reasons_match_booking(
    client: Any, case: dict[str, Any], built: Built, pins: dict[str, int], offers: list[dict[str, Any]]
) -> bool:
    """Probes at a start and pins of the example's own, or near an offer keeping some of its
    resources, and at an offer with one resource swapped for another of its kind."""
    day, minute = case["start"]
    start = local(MONDAY + dt.timedelta(days=day), minute).isoformat()
    if not offers:
        return probe(client, case, built, start, pins)
    offer = offers[0]
    offered = slot_pins(offer)
    booked = False
    if case["near"] is not None:
        start = (dt.datetime.fromisoformat(offer["start"]) + dt.timedelta(minutes=case["near"])).isoformat()
        pins = {**pins, **{pin: pk for pin, pk in offered.items() if pin in case["keep"]}}
    booked |= probe(client, case, built, start, pins)
    role, step = case["swap"]
    for pin in sorted({"room", role} & offered.keys()):
        ids = built.kinds[PIN_KINDS[pin]]
        other = ids[(ids.index(offered[pin]) + step) % len(ids)]
        if other != offered[pin]:
            swapped = {**offered, pin: other}
            if pin == "room":
                # The offered equipment may be fixed in the offered room: the engine picks again.
                swapped = {k: v for k, v in swapped.items() if k not in ("c_arm", "rf_generator")}
            booked |= probe(client, case, built, offer["start"], swapped)
    return booked


def check_gate_agrees(client: Any, users: Any, case: dict[str, Any], built: Built, pins: dict[str, int]) -> str | None:
    """On the day of a start the resources allow, the booking rule and the gate's hold item
    say the same of the patient's holds. Returns the item's status, None when nothing fits."""
    query = case_query({**case, "with_patient": False}, built, pins)
    response = client.get(
        "/api/v1/availability/", {**query, "from": MONDAY.isoformat(), "to": LAST_DAY.isoformat(), "limit": 1}
    )
    if response.status_code == 422 or not response.json()["results"]:
        return None
    slot = response.json()["results"][0]
    start = dt.datetime.fromisoformat(slot["start"])
    body = {**query, **slot_pins(slot), "patient": built.patient.pk, "start": slot["start"]}
    # The day's first minutes: every start of the day is still ahead, and "today" is the day.
    with time_machine.travel(dt.datetime.combine(start.date(), dt.time(0, 5), tzinfo=ZONE), tick=False):
        # Signed in that morning.
        client, overrider = (client_for(user) for user in users)
        codes = reason_codes(client, body)
        assert set(codes) <= {"anticoagulant_hold"}, (body, codes)
        inside = codes == ["anticoagulant_hold"]
        with undone():
            plain = book(client, body)
            assert plain.status_code == (422 if inside else 201), (body, plain.json())
        with undone():
            answer = book(overrider, {**body, "anticoagulant_override_reason": "Cleared by cardiology"})
            assert answer.status_code == 201, (body, answer.json())
            assert (answer.json()["anticoagulant_override"] is not None) == inside, answer.json()
            checklist = overrider.get(f"/api/v1/bookings/{answer.json()['id']}/checklist/")
            assert checklist.status_code == 200, checklist.json()
            item = next(i for i in checklist.json()["items"] if i["code"] == "holds")
    if inside:
        assert item["status"] == "overridden", item
    else:
        assert item["status"] in ("ok", "not_required"), item
    return str(item["status"])


@pytest.fixture
def users(db: None, frozen_now: dt.datetime) -> tuple[Any, Any]:
    scheduler = f.UserFactory(username="gen-scheduler", groups=["scheduler"])
    admin = f.UserFactory(username="gen-admin", groups=["admin"])
    return scheduler, admin


def test_search_reasons_booking_and_gate_agree(users):
    scheduler = client_for(users[0])
    seen: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(spec=clinics(), case=cases())
    def agree(spec: dict[str, Any], case: dict[str, Any]) -> None:
        with transaction.atomic():
            built = build(spec)
            pins = built.pins(case["pins"])
            offers = check_offers_book(scheduler, case, built, pins)
            booked = check_reasons_match_booking(scheduler, case, built, pins, offers)
            gate = check_gate_agrees(scheduler, users, case, built, pins)
            transaction.set_rollback(True)
        seen["examples"] += 1
        seen["offered"] += bool(offers)
        seen["booked"] += booked
        seen[f"gate {gate}"] += 1

    agree()
    # The examples reach every branch often enough for the agreement to mean something.
    assert seen["examples"] >= EXAMPLES, seen
    for branch in ("offered", "booked", "gate ok", "gate overridden", "gate None"):
        assert seen[branch] >= EXAMPLES // 50, (branch, seen)
    print(dict(seen))
