"""/api/docs/ renders its operations in a real browser that can reach the server only."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests import factories as f
from tests.browser import (
    SIZES,
    chromium,
    reaches,
    require_browser,
    resources_loaded,
    screenshot,
    sign_in_with_session,
)


@pytest.mark.parametrize("size", sorted(SIZES))
def test_api_docs_render_every_operation_without_the_network(live_server, size):
    require_browser()
    user = f.UserFactory(username=f"docs-{size}", groups=["scheduler"])
    client = Client()
    client.force_login(user)
    width, height = SIZES[size]
    with chromium(width, height) as driver:
        sign_in_with_session(driver, live_server.url, client)
        driver.get(live_server.url + "/api/docs/")
        WebDriverWait(driver, 20).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock-summary"))
        )
        summaries = driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        paths = {element.get_attribute("data-path") for element in summaries}
        screenshot(driver, f"api-docs-{size}")
        loaded = resources_loaded(driver)
        # The network beyond the server is shut: a CDN cannot have served any of it.
        assert not reaches(driver, "https://unpkg.com/swagger-ui-dist/swagger-ui-bundle.js")
    # The booking operations and the documented extras are there.
    assert "/api/v1/bookings/" in paths
    assert "/api/v1/daily-list/" in paths
    assert "/api/v1/availability/" in paths
    # Nothing came from anywhere but the server.
    server = urlsplit(live_server.url).netloc
    assert loaded
    assert {urlsplit(url).netloc for url in loaded} == {server}
    assert any(settings.STATIC_URL + "drf_spectacular_sidecar/" in url for url in loaded)
