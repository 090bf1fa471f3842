"""The day planner in real Chromium: on the demo day, before the clinic opens, a scheduler plans
the day, watches it being solved, reads the figures against first come first served and the
cases it moves with the board before and after, applies it, and the day board shows the new
day. Screenshots at desktop and phone width; axe-core on every page."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import time_machine
from django.core.management import call_command
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from patients.drugs import install_default_drugs
from patients.models import Drug
from planner.models import PlanRun, PlanStatus
from planner.services import plans_run_queued
from rooms.models import Site
from scheduling.catalogue import install_default_catalogue
from scheduling.models import Allocation, Booking, ProcedureType
from tests.browser import SIZES, chromium, require_browser, screenshot
from tests.conftest import MONDAY, local
from tests.test_browser_board import resize, user
from tests.test_browser_pages import checked, click_and_load, sign_in, text, wait_css


def test_a_scheduler_plans_the_demo_day_sees_the_figures_applies_it_and_the_board_follows(live_server, settings):
    require_browser()
    settings.PLAN_BUDGET_SECONDS = 4
    problems: dict[str, Any] = {}
    with time_machine.travel(local(MONDAY, 6, 30), tick=True):
        install_default_catalogue(ProcedureType)
        install_default_drugs(Drug)
        call_command("seed_demo", seed=7, week_of=MONDAY.isoformat(), stdout=io.StringIO())
        user("scheduler")
        site = Site.objects.get(code="demo-main")
        before = {
            b.pk: b.starts_at for b in Booking.objects.filter(site=site, status="scheduled", starts_at__date=MONDAY)
        }
        assert len(before) >= 5
        with chromium(*SIZES["desktop"]) as driver:
            sign_in(driver, live_server.url, "scheduler-board")
            driver.get(f"{live_server.url}/plan/?site={site.pk}&date={MONDAY.isoformat()}")
            checked(driver, "plan-form-desktop", problems)
            click_and_load(driver, lambda: driver.find_element(By.XPATH, "//button[normalize-space()='Plan this day']"))
            wait_css(driver, "#plan-progress progress")
            assert "Waiting for the planner" in text(driver)
            checked(driver, "plan-progress-desktop", problems)
            # The worker takes the run; the page, polling, reloads itself when it is done.
            assert plans_run_queued() == 1
            run = PlanRun.objects.get()
            assert run.status == PlanStatus.DONE, run.error
            WebDriverWait(driver, 15).until(lambda d: "The plan against first come, first served" in text(d))
            figures = driver.find_element(By.CSS_SELECTOR, "table.figures").text
            assert "First come, first served" in figures
            assert "As booked" in figures
            assert "Cases fitted" in figures
            moved = driver.find_elements(By.CSS_SELECTOR, "tr[data-moved]")
            result = run.result
            assert result["verified"] is True
            changing = [row for row in result["cases"] if row["booking"] and (row["moved_minutes"] or row["changed"])]
            assert len(moved) == len(changing) > 0
            # Two boards: the day as booked and as planned.
            tables = driver.find_elements(By.CSS_SELECTOR, "table.board")
            assert len(tables) == 2
            checked(driver, "plan-result-desktop", problems)
            resize(driver, "phone")
            driver.get(driver.current_url)
            checked(driver, "plan-result-phone", problems)
            resize(driver, "desktop")
            driver.get(driver.current_url)
            click_and_load(
                driver, lambda: driver.find_element(By.XPATH, "//button[normalize-space()='Apply this plan']")
            )
            WebDriverWait(driver, 10).until(lambda d: "Plan applied" in text(d))
            assert "/board/" in driver.current_url
            wait_css(driver, "#board .bar")
            screenshot(driver, "plan-applied-board-desktop")
            # The board draws each moved case where the plan put it.
            for row in changing:
                booking = Booking.objects.get(pk=row["booking"])
                assert booking.starts_at == dt.datetime.fromisoformat(row["start"])
                room = Allocation.objects.get(booking=booking, role="room", is_active=True)
                bar = driver.find_element(By.CSS_SELECTOR, f"#board .bar[data-leg='{room.pk}']")
                lane = bar.find_element(By.XPATH, "./ancestor::tr[1]")
                assert lane.get_attribute("data-row") == f"room-{room.room_id}"
            run.refresh_from_db()
            assert run.status == PlanStatus.APPLIED
    assert problems == {}
