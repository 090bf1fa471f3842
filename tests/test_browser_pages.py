"""The pages in real Chromium, as their users meet them: a scheduler registers a patient on
warfarin and books a two-level vertebroplasty from the slot finder; the physician finds it on
their day with the hold's status; a clash at the hold offers alternatives and one books; a case
is moved and cancelled; a tech cannot open the workspace; signing out ends the session. Every
page is scanned with axe-core, screenshotted at desktop and phone width, and the physician's
day of twelve cases prints on one A4 and one Letter page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from patients.models import Drug, MedicationHold, Patient
from rooms.models import OpeningHours
from scheduling.availability.search import SearchQuery, availability_search
from scheduling.models import Booking, BookingStatus, ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from staff.models import Shift
from tests import factories as f
from tests.browser import SIZES, axe_violations, chromium, pdf_pages, require_browser, screenshot
from tests.conftest import Clinic, build_clinic

PASSWORD = "a long demo password 42"


@pytest.fixture
def clinic_live(live_server: Any) -> tuple[Any, Clinic, dict[str, Any]]:
    require_browser()
    clinic = build_clinic()
    users = {}
    for role in ("scheduler", "physician", "tech", "nurse"):
        user = f.UserFactory(username=f"{role}-web", groups=[role], first_name=role.title(), last_name="User")
        user.set_password(PASSWORD)
        user.save()
        users[role] = user
    clinic.physicians[0].user = users["physician"]
    clinic.physicians[0].save()
    clinic.techs[0].user = users["tech"]
    clinic.techs[0].save()
    return live_server, clinic, users


def sign_in(driver: Any, base: str, username: str) -> None:
    driver.get(base + "/signin/")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    click_and_load(driver, driver.find_element(By.CSS_SELECTOR, "main button[type=submit]"))


def sign_out(driver: Any) -> None:
    click_and_load(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Sign out']"))


def text(driver: Any) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def wait_text(driver: Any, wanted: str) -> None:
    """Wait for the page (after a click that loads another) to show ``wanted``."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def shows(d: Any) -> bool:
        try:
            return wanted in text(d)
        except StaleElementReferenceException:
            return False

    WebDriverWait(driver, 10).until(shows, message=f"the page never showed {wanted!r}")


def wait_css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)),
        message=f"no {selector} on the page",
    )


def checked(driver: Any, name: str, problems: dict[str, Any]) -> None:
    """Screenshot the page and keep its serious and critical accessibility violations."""
    screenshot(driver, name)
    found = axe_violations(driver)
    if found:
        problems[name] = found


def fill(driver: Any, field_id: str, value: str) -> None:
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(value)


def click_text(driver: Any, label: str) -> None:
    """Click the link or button and wait for the page it loads."""
    xpath = f"//main//*[self::a or self::button][normalize-space()='{label}']"
    click_and_load(driver, lambda: driver.find_element(By.XPATH, xpath))


def click_and_load(driver: Any, locate: Any) -> None:
    """Click what ``locate()`` finds, as the page's own click event, and wait for the page it
    loads. (A native click after the whole-page screenshot's viewport change can fail to place
    the node; the event is the same one a user's click dispatches.)"""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    element = locate() if callable(locate) else locate
    page = driver.find_element(By.TAG_NAME, "html")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element)
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(page), message="the click loaded no page")


def test_a_scheduler_books_a_referral_and_the_physician_sees_it(clinic_live):
    server, clinic, _users = clinic_live
    base = server.url
    problems: dict[str, Any] = {}
    width, height = SIZES["desktop"]
    with chromium(width, height) as driver:
        driver.get(base + "/")
        checked(driver, "signin-desktop", problems)
        sign_in(driver, base, "scheduler-web")
        assert driver.current_url == base + "/book/"
        checked(driver, "book-patient-desktop", problems)

        # Register the patient, with warfarin from the drug list.
        click_text(driver, "Register a new patient")
        fill(driver, "id_mrn", "WEB-1001")
        fill(driver, "id_first_name", "Renée")
        fill(driver, "id_last_name", "Dubois")
        driver.execute_script("document.getElementById('id_date_of_birth').value = '1942-05-17'")
        Select(driver.find_element(By.ID, "id_sex")).select_by_value("female")
        fill(driver, "id_escort_name", "Marc Dubois")
        fill(driver, "id_escort_phone", "555-0142")
        fill(driver, "id_allergies", "Iodinated contrast")
        checked(driver, "register-desktop", problems)
        click_and_load(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Register']"))
        wait_text(driver, "Patient registered")
        warfarin = Drug.objects.get(code="warfarin")
        Select(driver.find_element(By.ID, "id_drug")).select_by_value(str(warfarin.pk))
        checked(driver, "patient-desktop", problems)
        click_text(driver, "Add hold")
        wait_text(driver, "Warfarin recorded")
        patient = Patient.objects.get(mrn="WEB-1001")
        assert MedicationHold.objects.filter(patient=patient, drug=warfarin).exists()

        # The order, then the slot finder.
        click_text(driver, "Book a case")
        Select(driver.find_element(By.ID, "id_procedure_type")).select_by_visible_text("VP Vertebroplasty")
        fill(driver, "id_level_names", "L1, T12")
        fill(driver, "id_indication_code", "M80.08XA")
        fill(driver, "id_indication_text", "Osteoporotic compression fracture")
        fill(driver, "id_referring_provider", "Dr. Ana Ruiz")
        fill(driver, "id_external_order_id", "ORD-5512")
        Select(driver.find_element(By.ID, "id_prior_auth_status")).select_by_value("approved")
        fill(driver, "id_prior_auth_number", "PA-7781")
        Select(driver.find_element(By.ID, "id_physician")).select_by_value(str(clinic.physicians[0].pk))
        click_text(driver, "Find starts")
        wait_css(driver, "#finder .slot")
        checked(driver, "book-slots-desktop", problems)
        days = driver.find_elements(By.CSS_SELECTOR, "#finder .day-group")
        assert len(days) >= 5
        # Each day shows its own first starts, not a run of starts on one morning.
        assert all(len(day.find_elements(By.CSS_SELECTOR, ".slot")) <= 2 for day in days)
        first = driver.find_element(By.CSS_SELECTOR, "#finder .slot")
        assert "C-arm" in first.text
        assert "Recovery bay" in first.text
        click_and_load(driver, lambda: driver.find_element(By.CSS_SELECTOR, "#finder .slot button"))

        # Held, with its countdown; confirm.
        countdown = wait_css(driver, "[data-countdown]")
        assert ":" in countdown.text
        checked(driver, "case-hold-desktop", problems)
        click_text(driver, "Confirm booking")
        wait_text(driver, "Booked.")
        booking = Booking.objects.get(patient=patient)
        assert booking.status == BookingStatus.SCHEDULED
        assert booking.level_names == ["T12", "L1"]
        # Warfarin still taken today: five whole days without it before a high-risk case.
        today = timezone.now().astimezone(clinic.site.zone).date()
        assert booking.starts_at.astimezone(clinic.site.zone).date() > today + dt.timedelta(days=5)
        wait_text(driver, "T12, L1")
        wait_text(driver, "22510, +22512")
        checked(driver, "case-desktop", problems)
        sign_out(driver)
        driver.get(base + "/book/")
        assert "/signin/" in driver.current_url

        # The physician's day shows the case with the hold's status.
        sign_in(driver, base, "physician-web")
        day = booking.starts_at.astimezone(clinic.site.zone).date()
        driver.get(f"{base}/day/?date={day.isoformat()}")
        row = driver.find_element(By.CSS_SELECTOR, f"tr[data-case='{booking.pk}']")
        assert "Dubois, Renée" in row.text
        assert "Warfarin: last still taking, hold 5 d" in row.text
        assert "Iodinated contrast" in row.text
        assert "T12, L1" in row.text
        checked(driver, "day-desktop", problems)
        sign_out(driver)

        # A tech cannot open the booking workspace.
        sign_in(driver, base, "tech-web")
        assert driver.current_url == base + "/day/"
        driver.get(base + "/book/")
        wait_text(driver, "Not allowed")
        checked(driver, "refused-desktop", problems)
        sign_out(driver)
    assert not problems, problems


def test_a_clash_at_the_hold_offers_alternatives_and_a_case_is_moved_and_cancelled(clinic_live):
    server, clinic, _users = clinic_live
    base = server.url
    problems: dict[str, Any] = {}
    patient, rival = clinic.patients[0], clinic.patients[1]
    with chromium(*SIZES["desktop"]) as driver:
        sign_in(driver, base, "scheduler-web")
        driver.get(f"{base}/book/?patient={patient.pk}")
        Select(driver.find_element(By.ID, "id_procedure_type")).select_by_visible_text("VP Vertebroplasty")
        Select(driver.find_element(By.ID, "id_physician")).select_by_value(str(clinic.physicians[0].pk))
        click_text(driver, "Find starts")
        slot = wait_css(driver, "#finder .slot")
        start = dt.datetime.fromisoformat(slot.find_element(By.NAME, "start").get_attribute("value"))
        pins = {
            element.get_attribute("name")[4:]: int(element.get_attribute("value"))
            for element in slot.find_elements(By.CSS_SELECTOR, "input[name^='pin_']")
        }
        # Someone else books the same start with the same physician while the list is open.
        booking_create(
            actor=None,
            request=CaseRequest(procedure_type=clinic.vp(), patient=rival, pins={"physician": pins["physician"]}),
            starts_at=start,
        )
        click_and_load(driver, lambda: driver.find_element(By.CSS_SELECTOR, "#finder .slot button"))
        clash = wait_css(driver, "#clash")
        assert "That start was just taken" in clash.text
        alternatives = clash.find_elements(By.CSS_SELECTOR, ".slot")
        assert alternatives
        checked(driver, "book-clash-desktop", problems)
        click_and_load(driver, lambda: driver.find_element(By.CSS_SELECTOR, "#clash .slot button"))
        wait_text(driver, "Held for you")
        click_text(driver, "Confirm booking")
        wait_text(driver, "Booked.")
        booking = Booking.objects.get(patient=patient)
        assert booking.status == BookingStatus.SCHEDULED
        assert booking.starts_at > start

        # Move it, then cancel it with a reason.
        click_text(driver, "Move to another time")
        wait_css(driver, "#finder .slot")
        checked(driver, "reschedule-desktop", problems)
        moves = driver.find_elements(By.CSS_SELECTOR, "#finder .slot")
        target = moves[-1]
        choice = target.find_element(By.TAG_NAME, "button").get_attribute("value")
        new_start = dt.datetime.fromisoformat(choice.split("|")[0])
        click_and_load(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#finder .slot button")[-1])
        wait_text(driver, "Moved.")
        booking.refresh_from_db()
        assert booking.starts_at == new_start
        Select(driver.find_element(By.ID, "id_reason")).select_by_value("patient_request")
        click_text(driver, "Cancel the case")
        wait_text(driver, "Cancelled")
        booking.refresh_from_db()
        assert booking.status == BookingStatus.CANCELLED
        wait_text(driver, "booking.cancel")
    assert not problems, problems


def twelve_cases(clinic: Clinic) -> tuple[dt.date, Any]:
    """Twelve interlaminar epidurals of one physician on the next weekday, on a site open
    round the clock, each patient with allergies, a blood thinner and notes."""
    OpeningHours.objects.filter(site=clinic.site).update(opens_at=dt.time(0), closes_at=dt.time(23, 59))
    Shift.objects.update(starts_at=dt.time(0), ends_at=dt.time(23, 59))
    esi = ProcedureType.objects.get(code="ESI-IL")
    physician = clinic.physicians[1]
    today = timezone.now().astimezone(clinic.site.zone).date()
    day = today + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    aspirin = Drug.objects.get(code="aspirin-primary")
    moment = dt.datetime.combine(day, dt.time(6), tzinfo=clinic.site.zone)
    for index in range(12):
        patient = Patient.objects.create(
            mrn=f"PRN-{index:03}",
            first_name=["Margaret", "José", "Wendell", "Keisha"][index % 4],
            last_name=["Fitzgerald-Hughes", "Castañeda", "Washington", "Oyelaran"][index % 4] + f" {index}",
            date_of_birth=dt.date(1940 + index, 3, 9),
            sex="female" if index % 2 else "male",
            escort_name="Responsible Adult",
            escort_phone="555-0100",
            allergies="Iodinated contrast, latex" if index % 3 == 0 else "",
        )
        MedicationHold.objects.create(patient=patient, drug=aspirin)
        case = CaseRequest(procedure_type=esi, patient=patient, pins={"physician": physician.pk})
        [slot] = availability_search(SearchQuery(request=case, date_from=day, date_to=day, count=1, not_before=moment))
        booked = booking_create(request=case, actor=None, starts_at=slot.start)
        Booking.objects.filter(pk=booked.pk).update(order_notes="Bring prior MRI; left-sided pain worse standing.")
        moment = slot.start
    return day, physician


def test_every_page_at_desktop_and_phone_width_and_the_day_on_paper(clinic_live):
    server, clinic, _users = clinic_live
    base = server.url
    day, physician = twelve_cases(clinic)
    case = Booking.objects.order_by("starts_at").first()
    assert case is not None
    problems: dict[str, Any] = {}
    pages = {
        "day": f"/day/?physician={physician.pk}&date={day.isoformat()}",
        "cases": f"/cases/?date={day.isoformat()}",
        "case": f"/cases/{case.pk}/",
        "reschedule": f"/cases/{case.pk}/reschedule/",
        "patients": "/patients/",
        "patient": f"/patients/{case.patient_id}/",
        "register": "/patients/new/",
        "book-order": f"/book/?patient={clinic.patients[3].pk}",
    }
    for size in sorted(SIZES):
        width, height = SIZES[size]
        with chromium(width, height) as driver:
            driver.get(base + "/signin/")
            checked(driver, f"signin-{size}", problems)
            sign_in(driver, base, "scheduler-web")
            for name, path in pages.items():
                driver.get(base + path)
                assert "Server Error" not in driver.title
                checked(driver, f"{name}-{size}", problems)
                # Nothing sideways to scroll at this width.
                overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, (name, size, overflow)
            driver.get(base + pages["day"])
            rows = driver.find_elements(By.CSS_SELECTOR, "table.day tbody tr")
            assert len(rows) == 12
            if size == "desktop":
                assert pdf_pages(driver, "a4") == 1
                assert pdf_pages(driver, "letter") == 1
    assert not problems, problems


def test_sign_in_and_booking_controls_work_from_the_keyboard_with_visible_focus(clinic_live):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    server, clinic, _users = clinic_live
    with chromium(*SIZES["desktop"]) as driver:
        driver.get(server.url + "/signin/")
        keys = ActionChains(driver)
        focused = []
        for _ in range(6):
            keys.send_keys(Keys.TAB).perform()
            element = driver.switch_to.active_element
            focused.append(element.get_attribute("id") or element.tag_name)
            if element.get_attribute("id") == "id_username":
                break
        assert focused[-1] == "id_username", focused
        outline = driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"
        keys.send_keys("scheduler-web", Keys.TAB, PASSWORD, Keys.ENTER).perform()
        wait_text(driver, "Find a patient")
        assert driver.current_url == server.url + "/book/"
        # The patient search from the keyboard: type, Enter, and the results come in place.
        search = driver.find_element(By.ID, "id_q")
        search.send_keys(clinic.patients[0].last_name, Keys.ENTER)
        wait_css(driver, "#results table")
        # htmx put the results in place: the page did not move to /patients/.
        assert driver.current_url == server.url + "/book/"
        link = driver.find_element(By.CSS_SELECTOR, "#results a.button")
        link.send_keys(Keys.ENTER)
        wait_css(driver, "#id_procedure_type")
        assert f"patient={clinic.patients[0].pk}" in driver.current_url
