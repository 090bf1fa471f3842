"""The standards faces where people meet them, in real Chromium: a physician makes calendar
feed links at /calendar/ and the link shown subscribes to a feed of their cases with no patient
data; an administrator adds an HL7 interface and a webhook in the admin and finds a parked
delivery in the log with its attempts. Screenshots at desktop and phone width; our own pages are
scanned with axe-core (the admin's pages are Django's own)."""

from __future__ import annotations

import datetime as dt
import urllib.request
from typing import Any

import icalendar
import pytest
from selenium.webdriver.common.by import By

from interop.delivery import deliveries_run
from interop.models import Delivery, DeliveryStatus, Hl7Interface, WebhookSubscription
from outbox.registry import event_kinds
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests import factories as f
from tests.browser import SIZES, chromium, require_browser, screenshot
from tests.conftest import MONDAY, build_clinic, local
from tests.servers import free_port
from tests.test_browser_pages import PASSWORD, checked, click_and_load, sign_in, text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(live_server: Any):
    require_browser()
    clinic = build_clinic()
    physician = f.UserFactory(username="physician-web", groups=["physician"], first_name="Ana", last_name="Reyes")
    admin = f.UserFactory(username="admin-web", groups=["admin"], is_staff=True, is_superuser=True)
    for user in (physician, admin):
        user.set_password(PASSWORD)
        user.save()
    clinic.physicians[0].user = physician
    clinic.physicians[0].save()
    case = booking_create(
        actor=None,
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[0], pins=clinic.resources()),
        starts_at=local(MONDAY, 9),
    )
    return live_server, clinic, case


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_physician_makes_feed_links_and_subscribes_to_their_cases(live, size, settings):
    server, clinic, case = live
    settings.PUBLIC_URL = server.url
    problems: dict[str, Any] = {}
    with chromium(*SIZES[size]) as driver:
        sign_in(driver, server.url, "physician-web")
        driver.get(server.url + "/calendar/")
        assert "You have no feed links yet." in text(driver)
        checked(driver, f"calendar-empty-{size}", problems)
        click_and_load(driver, lambda: driver.find_element(By.XPATH, "//button[normalize-space()='Make feed links']"))
        links = [code.text for code in driver.find_elements(By.CSS_SELECTOR, ".feed-links code")]
        checked(driver, f"calendar-links-{size}", problems)
        assert "Copy these links now" in text(driver)
        # Shown once: a reload shows that links are on, not the secret.
        driver.get(server.url + "/calendar/")
        assert "Your feed links are on" in text(driver)
        assert not driver.find_elements(By.CSS_SELECTOR, ".feed-links code")
    mine = next(link for link in links if "/physician/" in link)
    with urllib.request.urlopen(mine, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/calendar")
        feed = answer.read()
    events = icalendar.Calendar.from_ical(feed).walk("VEVENT")
    assert [str(e["UID"]).split("@")[0] for e in events] == [f"case-{case.pk}"]
    patient = clinic.patients[0]
    for value in (patient.first_name, patient.last_name, patient.mrn, patient.phone):
        assert value.encode() not in feed
    assert problems == {}


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_an_administrator_configures_interfaces_and_reads_the_delivery_log(live, size):
    server, _, case = live
    dead = free_port()
    with chromium(*SIZES[size]) as driver:
        sign_in(driver, server.url, "admin-web")
        driver.get(server.url + "/admin/interop/hl7interface/add/")
        screenshot(driver, f"admin-hl7-add-{size}")
        for field, value in (("id_name", "Hospital EHR"), ("id_host", "127.0.0.1"), ("id_port", str(dead))):
            driver.find_element(By.ID, field).send_keys(value)
        click_and_load(driver, lambda: driver.find_element(By.NAME, "_save"))
        assert "was added successfully" in text(driver)
        driver.get(server.url + "/admin/interop/webhooksubscription/add/")
        screenshot(driver, f"admin-webhook-add-{size}")
        boxes = driver.find_elements(By.CSS_SELECTOR, "input[name=events]")
        assert {box.get_attribute("value") for box in boxes} == {code for code, _ in event_kinds()}
        assert "whsec_" not in text(driver)
        driver.find_element(By.ID, "id_name").send_keys("Patient portal")
        driver.find_element(By.ID, "id_url").send_keys(f"http://127.0.0.1:{dead}/hooks")
        driver.find_element(By.CSS_SELECTOR, "input[name=events][value='booking.cancelled']").click()
        driver.find_element(By.CSS_SELECTOR, "input[name=events][value='booking.created']").click()
        click_and_load(driver, lambda: driver.find_element(By.NAME, "_save"))
        assert "was added successfully" in text(driver)
        assert Hl7Interface.objects.get().port == dead
        hook = WebhookSubscription.objects.get()
        assert hook.secret.startswith("whsec_")
        assert sorted(hook.events) == ["booking.cancelled", "booking.created"]
        # Saved, the page shows the secret the receiver verifies with.
        driver.get(server.url + f"/admin/interop/webhooksubscription/{hook.pk}/change/")
        assert hook.secret in text(driver)
        screenshot(driver, f"admin-webhook-change-{size}")
        # The case booked before they were added goes to both; neither answers, and after a day
        # both are parked.
        deliveries_run()
        deliveries_run(now=case.created_at + dt.timedelta(hours=25))
        assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PARKED}
        driver.get(server.url + "/admin/interop/delivery/")
        screenshot(driver, f"admin-deliveries-{size}")
        assert "Parked" in text(driver)
        webhook_delivery = Delivery.objects.get(webhook=hook)
        driver.get(server.url + f"/admin/interop/delivery/{webhook_delivery.pk}/change/")
        screenshot(driver, f"admin-delivery-{size}")
        assert "unreachable" in text(driver)
