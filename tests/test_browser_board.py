"""The procedure day in real Chromium: the demo day's board draws one bar per booked leg in its
resource's row at its time; a nurse takes a case from check-in to discharge on the flow, with
the recovery countdown; a physician overrides the checklist with a reason; a late case shows
its projected delay on the next case before it ends; a C-arm downtime lists the cases it hits,
one swap applies, and the open board follows without a reload. Board (desktop, wall) and flow
are screenshotted and scanned with axe-core."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from core.models import AuditEvent
from patients.drugs import install_default_drugs
from patients.models import Drug, ImagingStudy, LabResult
from procedure_day.models import CaseChecklist
from rooms.models import Site
from scheduling.catalogue import install_default_catalogue
from scheduling.models import Allocation, Booking, BookingStatus, ProcedureType
from scheduling.selectors import site_day_schedule
from tests import factories as f
from tests.browser import SCREENSHOT_DIR, SIZES, chromium, require_browser
from tests.conftest import MONDAY, build_clinic, local
from tests.test_browser_pages import PASSWORD, checked, click_and_load, sign_in, wait_css, wait_text
from tests.test_late import esi, vp_at_nine

pytestmark = pytest.mark.django_db(transaction=True)


def user(role: str, username: str | None = None) -> Any:
    account = f.UserFactory(
        username=username or f"{role}-board", groups=[role], first_name=role.title(), last_name="User"
    )
    account.set_password(PASSWORD)
    account.save()
    return account


def clock(hour: int, minute: int = 0) -> Any:
    """The server's clock on the test Monday, ticking (the browser keeps its own)."""
    return time_machine.travel(local(MONDAY, hour, minute), tick=True)


def bars(driver: Any) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, "#board .bar")


def press(driver: Any, case: int, label: str) -> None:
    """Press a step button on the case's flow card and wait for the page it loads."""
    xpath = f"//article[@data-case='{case}']//button[normalize-space()='{label}']"
    click_and_load(driver, lambda: driver.find_element(By.XPATH, xpath))


def in_state(driver: Any, case: int, state: str) -> None:
    wait_css(driver, f"section[data-state='{state}'] article[data-case='{case}']")


def resize(driver: Any, size: str) -> None:
    """Another window size (the whole-page screenshot leaves its own metrics behind)."""
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.set_window_size(*SIZES[size])


def set_value(driver: Any, element_id: str, value: str) -> None:
    element = driver.find_element(By.ID, element_id)
    driver.execute_script("arguments[0].value = arguments[1];", element, value)


def test_the_demo_days_board_draws_every_leg_in_its_row_at_its_time(live_server):
    require_browser()
    problems: dict[str, Any] = {}
    with clock(6, 30):
        # A transactional test's flush empties the catalogues the migrations installed.
        install_default_catalogue(ProcedureType)
        install_default_drugs(Drug)
        call_command("seed_demo", seed=7, week_of=MONDAY.isoformat(), stdout=io.StringIO())
        user("nurse")
        site = Site.objects.get(code="demo-main")
        schedule = site_day_schedule(site, MONDAY)
        assert len(schedule) > 20
        with chromium(*SIZES["desktop"]) as driver:
            sign_in(driver, live_server.url, "nurse-board")
            driver.get(f"{live_server.url}/board/?site={site.pk}&date={MONDAY.isoformat()}")
            wait_css(driver, "#board .bar")
            drawn = bars(driver)
            assert len(drawn) == len(schedule)
            hours = [el.text for el in driver.find_elements(By.CSS_SELECTOR, "#board .hour")]
            first_hour = dt.datetime.combine(MONDAY, dt.time.fromisoformat(hours[0]), tzinfo=site.zone)
            span = dt.timedelta(hours=len(hours)).total_seconds()
            by_leg = {el.get_attribute("data-leg"): el for el in drawn}
            legs = {
                str(leg.pk): leg
                for leg in Allocation.objects.filter(booking__site=site, is_active=True).exclude(role="patient")
            }
            for row in schedule:
                matching = [
                    leg
                    for leg in legs.values()
                    if leg.booking_id == row.booking_id
                    and leg.role == row.leg.role
                    and leg.starts_at == row.leg.starts_at
                ]
                assert len(matching) == 1
                leg = matching[0]
                bar = by_leg[str(leg.pk)]
                lane = bar.find_element(By.XPATH, "./ancestor::td[1]")
                tr = lane.find_element(By.XPATH, "./ancestor::tr[1]")
                column = "bay" if row.leg.kind == "recovery_bay" else row.leg.kind
                assert tr.get_attribute("data-row") == f"{column}-{row.leg.resource_id}"
                assert tr.find_element(By.TAG_NAME, "th").text.strip() == row.leg.name
                expected = (leg.starts_at - first_hour).total_seconds() / span * lane.rect["width"]
                assert abs((bar.rect["x"] - lane.rect["x"]) - expected) <= 2, (row, expected)
            checked(driver, "board-demo-desktop", problems)
            # On paper: one landscape page for the demo day, in colour.
            printed = base64.b64decode(
                driver.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True, "printBackground": True})["data"]
            )
            (SCREENSHOT_DIR / "board-print.pdf").write_bytes(printed)
            assert len(re.findall(rb"/Type\s*/Page(?!s)", printed)) == 1
            box = re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)", printed)
            assert box is not None
            assert float(box.group(1)) > float(box.group(2))
            # A bar opens its case.
            opened = driver.find_element(By.CSS_SELECTOR, "#board a.bar")
            case_id = opened.get_attribute("data-booking")
            click_and_load(driver, opened)
            assert driver.current_url.endswith(f"/cases/{case_id}/")
            wait_text(driver, "Times and resources")
            driver.get(f"{live_server.url}/board/?site={site.pk}&date={MONDAY.isoformat()}&wall=1")
            wait_css(driver, "body.wall #board .bar")
            assert not driver.find_elements(By.CSS_SELECTOR, "header.top")
            assert len(bars(driver)) == len(schedule)
            checked(driver, "board-demo-wall", problems)
            resize(driver, "phone")
            driver.get(f"{live_server.url}/board/?site={site.pk}&date={MONDAY.isoformat()}")
            wait_css(driver, "#board .bar")
            checked(driver, "board-demo-phone", problems)
    assert not problems, problems


def ready_records(booking: Booking) -> None:
    """The patient's records a vertebroplasty needs (labs, imaging); the checklist is the nurse's."""
    taken = local(MONDAY, 7) - dt.timedelta(days=2)
    LabResult.objects.create(patient=booking.patient, test="inr", value=Decimal("1.1"), taken_at=taken)
    LabResult.objects.create(patient=booking.patient, test="platelets", value=Decimal("180"), taken_at=taken)
    ImagingStudy.objects.create(patient=booking.patient, modality="mri_stir", performed_on=dt.date(2027, 1, 2))
    patient = booking.patient
    patient.escort_name, patient.escort_phone = "Pat Escort", "555-0101"
    patient.sex, patient.date_of_birth, patient.pregnancy_possible = "female", dt.date(1980, 5, 1), "auto"
    patient.save()


def test_a_nurse_takes_a_case_from_check_in_to_discharge_with_the_countdown(live_server):
    require_browser()
    problems: dict[str, Any] = {}
    with clock(8, 0) as traveller:
        clinic = build_clinic()
        user("nurse")
        booking = vp_at_nine(clinic)
        ready_records(booking)
        pk = booking.pk
        with chromium(*SIZES["desktop"]) as driver:
            sign_in(driver, live_server.url, "nurse-board")
            # The nurse's home is the flow.
            wait_css(driver, f"section[data-state='scheduled'] article[data-case='{pk}']")
            checked(driver, "flow-desktop", problems)
            press(driver, pk, "Check in")
            in_state(driver, pk, "checked_in")
            # Not ready yet: the card sends the nurse to the checklist.
            card = driver.find_element(By.CSS_SELECTOR, f"article[data-case='{pk}']")
            assert "Missing: consent" in card.text
            click_and_load(driver, card.find_element(By.LINK_TEXT, "Checklist"))
            set_value(driver, "id_consent_signed_at", "2027-01-11T08:00")
            set_value(driver, "id_last_solids_at", "2027-01-11T00:30")
            set_value(driver, "id_last_clears_at", "2027-01-11T06:30")
            driver.find_element(By.ID, "id_escort_confirmed").click()
            driver.find_element(By.ID, "id_allergies_reviewed").click()
            Select(driver.find_element(By.ID, "id_pregnancy_status")).select_by_value("negative")
            checked(driver, "flow-case-desktop", problems)
            click_and_load(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Save checklist']"))
            wait_text(driver, "Checklist saved.")
            readiness = driver.find_element(By.ID, "checklist").text
            assert "missing" not in readiness, readiness
            assert not driver.find_elements(By.ID, "override_reason")  # a nurse does not override
            click_and_load(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Mark ready']"))
            wait_text(driver, "Mark ready: recorded")
            driver.get(f"{live_server.url}/flow/?date={MONDAY.isoformat()}")
            in_state(driver, pk, "ready")
            press(driver, pk, "Start procedure")
            in_state(driver, pk, "in_procedure")
            press(driver, pk, "End procedure")
            press(driver, pk, "Start recovery")
            in_state(driver, pk, "in_recovery")
            countdown = driver.find_element(By.CSS_SELECTOR, f"article[data-case='{pk}'] .countdown[data-done='now']")
            WebDriverWait(driver, 5).until(lambda d: re.fullmatch(r"\d:\d\d:\d\d", countdown.text))
            first = countdown.text
            WebDriverWait(driver, 5).until(lambda d: countdown.text != first)  # it counts down
            assert first.startswith("1:59") or first.startswith("2:00")
            checked(driver, "flow-recovery-desktop", problems)
            resize(driver, "phone")
            driver.refresh()
            wait_css(driver, f"article[data-case='{pk}']")
            checked(driver, "flow-recovery-phone", problems)
            resize(driver, "desktop")
            # Too early for discharge: the refusal says how long is left.
            press(driver, pk, "Ready for discharge")
            wait_text(driver, "min remain")
            # Two hours later the minimum recovery has passed.
            traveller.shift(dt.timedelta(hours=2, minutes=1))
            driver.get(f"{live_server.url}/flow/?date={MONDAY.isoformat()}")
            press(driver, pk, "Ready for discharge")
            in_state(driver, pk, "ready_for_discharge")
            card = driver.find_element(By.CSS_SELECTOR, f"article[data-case='{pk}']")
            card.find_element(By.CSS_SELECTOR, "input[name='escort_present']").click()
            press(driver, pk, "Discharge")
            in_state(driver, pk, "discharged")
            # The check-in time is corrected afterwards, with a reason.
            driver.get(f"{live_server.url}/flow/{pk}/")
            row = driver.find_element(By.CSS_SELECTOR, "tr[data-step='checked_in_at']")
            row.find_element(By.TAG_NAME, "summary").click()
            set_value(driver, "at-checked_in_at", "2027-01-11T07:55")
            row.find_element(By.NAME, "reason").send_keys("Arrived 07:55; checked in late")
            click_and_load(driver, row.find_element(By.TAG_NAME, "button"))
            wait_text(driver, "Time corrected to 07:55")
        booking.refresh_from_db()
        assert booking.status == BookingStatus.DISCHARGED
        assert booking.checked_in_at == local(MONDAY, 7, 55)
        assert all(
            getattr(booking, name) is not None
            for name in (
                "ready_at",
                "procedure_started_at",
                "procedure_ended_at",
                "recovery_started_at",
                "discharged_at",
            )
        )
        assert CaseChecklist.objects.get(booking=booking).escort_present_at is not None
        assert AuditEvent.objects.filter(action="booking.step_time_correct", object_id=str(pk)).count() == 1
    assert not problems, problems


def test_a_physician_overrides_the_checklist_with_a_reason(live_server):
    require_browser()
    with clock(8, 0):
        clinic = build_clinic()
        physician = user("physician")
        clinic.physicians[0].user = physician
        clinic.physicians[0].save()
        booking = vp_at_nine(clinic)
        Booking.objects.filter(pk=booking.pk).update(status="checked_in", checked_in_at=local(MONDAY, 8))
        with chromium(*SIZES["desktop"]) as driver:
            sign_in(driver, live_server.url, "physician-board")
            driver.get(f"{live_server.url}/flow/{booking.pk}/")
            wait_text(driver, "Still missing")
            driver.find_element(By.ID, "override_reason").send_keys("Consent on the previous visit's form; reviewed")
            click_and_load(
                driver, driver.find_element(By.XPATH, "//button[normalize-space()='Override and mark ready']")
            )
            wait_text(driver, "Mark ready: recorded")
            wait_text(driver, "Overridden by physician-board")
        booking.refresh_from_db()
        assert booking.status == BookingStatus.READY
        checklist = CaseChecklist.objects.get(booking=booking)
        assert checklist.override_reason == "Consent on the previous visit's form; reviewed"
        assert checklist.override_by == physician
        assert AuditEvent.objects.filter(action="booking.readiness_override", object_id=str(booking.pk)).exists()


def test_a_late_case_shows_the_projected_delay_on_the_next_case_before_it_ends(live_server):
    require_browser()
    problems: dict[str, Any] = {}
    with clock(7, 0) as traveller:
        clinic = build_clinic()
        user("nurse")
        late = vp_at_nine(clinic)
        following = esi(clinic, 10, 20, bay=1, patient=1, room=0, c_arm=0)  # Fluoro 1 after the late case
        Booking.objects.filter(pk=late.pk).update(status="in_procedure", procedure_started_at=local(MONDAY, 9))
        traveller.move_to(local(MONDAY, 10, 25))
        with chromium(*SIZES["desktop"]) as driver:
            sign_in(driver, live_server.url, "nurse-board")
            driver.get(f"{live_server.url}/board/?date={MONDAY.isoformat()}")
            wait_css(driver, f"#board .bar[data-booking='{following.pk}'] .badge.projected")
            badge = driver.find_element(By.CSS_SELECTOR, f"#board .bar[data-booking='{following.pk}'] .badge.projected")
            assert re.fullmatch(r"\+2[5-6] min", badge.text), badge.text
            running = driver.find_element(By.CSS_SELECTOR, f"#board .bar[data-booking='{late.pk}'] .badge.late")
            assert re.fullmatch(r"\+2[5-6] min", running.text), running.text
            checked(driver, "board-late-desktop", problems)
            driver.get(f"{live_server.url}/flow/?date={MONDAY.isoformat()}")
            card = wait_css(driver, f"article[data-case='{following.pk}']")
            assert re.search(r"expect \+2[5-6] min", card.text), card.text
        late.refresh_from_db()
        assert late.status == BookingStatus.IN_PROCEDURE
        assert late.procedure_ended_at is None
    assert not problems, problems


def test_a_c_arm_downtime_lists_the_hit_cases_and_a_swap_updates_the_open_board(live_server, settings):
    require_browser()
    settings.BOARD_REFRESH_SECONDS = 2
    problems: dict[str, Any] = {}
    with clock(7, 0):
        clinic = build_clinic()
        user("scheduler")
        booking = vp_at_nine(clinic)
        down, spare = clinic.c_arms
        with chromium(*SIZES["desktop"]) as driver:
            sign_in(driver, live_server.url, "scheduler-board")
            board_url = f"{live_server.url}/board/?date={MONDAY.isoformat()}"
            driver.get(board_url)
            wait_css(driver, f"tr[data-row='equipment-{down.pk}'] .bar[data-booking='{booking.pk}']")
            driver.execute_script("window.boardNotReloaded = true;")
            board_tab = driver.current_window_handle
            driver.switch_to.new_window("tab")
            driver.get(f"{live_server.url}/downtime/")
            Select(driver.find_element(By.ID, "id_target")).select_by_value(f"equipment:{down.pk}")
            set_value(driver, "id_starts_at", "2027-01-11T08:00")
            set_value(driver, "id_ends_at", "2027-01-11T12:00")
            Select(driver.find_element(By.ID, "id_reason")).select_by_value("qa")
            checked(driver, "downtime-desktop", problems)
            click_and_load(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Record downtime']"))
            hit = wait_css(driver, f"section.hit[data-case='{booking.pk}']")
            assert "Dr. Ana Reyes" in hit.text
            assert "09:00" in hit.text
            checked(driver, "downtime-swaps-desktop", problems)
            swap = hit.find_element(By.CSS_SELECTOR, "li[data-swap='c_arm']")
            assert spare.name in swap.text
            click_and_load(driver, swap.find_element(By.TAG_NAME, "button"))
            wait_text(driver, f"Case {booking.pk} moved")
            driver.switch_to.window(board_tab)
            wait_css(driver, f"tr[data-row='equipment-{spare.pk}'] .bar[data-booking='{booking.pk}']")
            assert driver.execute_script("return window.boardNotReloaded === true;")
            assert not driver.find_elements(
                By.CSS_SELECTOR, f"tr[data-row='equipment-{down.pk}'] .bar[data-booking='{booking.pk}']"
            )
            assert driver.find_elements(By.CSS_SELECTOR, f"tr[data-row='equipment-{down.pk}'] .block")
        legs = {leg.role: leg.equipment_id for leg in Allocation.objects.filter(booking=booking, is_active=True)}
        assert legs["c_arm"] == spare.pk
    assert not problems, problems
