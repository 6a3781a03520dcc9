"""In a real browser: an administrator logs in as a customer (banner, the customer's home and menus) and
returns to the customer's page; Generate fills a new password that the panel then accepts."""

from __future__ import annotations

import re

import pytest
import requests

from tests.browser.conftest import browser, log_in, page, panel, screenshot  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser]
PASSWORD = "a browser password"
UNAMBIGUOUS = re.compile(r"[A-HJ-NP-Za-km-z2-9\-_.!@#%+=]{20}")


def test_admin_logs_in_as_a_customer_and_returns(page, panel):  # noqa: F811
    """admin → Log in as cust: the banner and cust's home, no administrator's menu; Return → cust's page as
    admin; Generate there fills the password field, and the saved password opens the API for cust."""
    made = requests.post(panel.url + "/api/v1/users", auth=("admin", panel.password), timeout=30,
                         json={"name": "cust", "password": PASSWORD, "roles": []})
    assert made.status_code == 201, made.text
    user_page = f"{panel.url}/accounts/users/{made.json()['id']}"
    log_in(page, panel, "admin", panel.password)
    page.goto(user_page)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in as cust").click()
    page.wait_for_load_state()
    banner = page.locator("#impersonation")
    assert banner.is_visible()
    assert " ".join(banner.inner_text().split()).startswith(
        "You are logged in as cust (administrator admin) — Return to your account")
    assert page.url.endswith("/home")
    assert page.locator(".sidebar a[href='/accounts/users']").count() == 0
    assert page.locator(".topbar .who").inner_text().startswith("cust")
    screenshot(page, "login-as-customer-home")
    page.goto(panel.url + "/account")
    assert page.locator("#impersonation").is_visible()
    assert page.locator("#password-form").count() == 0
    with page.expect_navigation():
        banner.get_by_role("button", name="Return to your account").click()
    assert page.url == user_page
    assert page.locator("#impersonation").count() == 0
    assert "admin logged in as cust" in page.locator("#logins-as").inner_text()

    field = page.locator("#user input[name=password]")
    assert field.input_value() == ""
    page.get_by_role("button", name="Generate a password for Password").click()
    generated = field.input_value()
    assert UNAMBIGUOUS.fullmatch(generated), generated
    shown = page.locator("#user .generated-password code")
    assert shown.is_visible() and shown.inner_text() == generated
    page.get_by_role("button", name="Generate a password for Password").click()
    assert field.input_value() != generated
    generated = field.input_value()
    screenshot(page, "password-generated")
    with page.expect_navigation():
        page.locator("#user button.primary", has_text="Save").click()
    assert "User cust saved." in page.content()
    assert generated not in page.content()
    answer = requests.get(panel.url + "/api/v1/operations", auth=("cust", generated), timeout=30)
    assert answer.status_code == 200, answer.text
    assert page.js_errors == []


def test_generate_fills_both_fields_of_a_password_change(page, panel):  # noqa: F811
    """A customer's own password change: Generate fills the new password and its confirmation; the change is
    accepted and the new password logs in."""
    made = requests.post(panel.url + "/api/v1/users", auth=("admin", panel.password), timeout=30,
                         json={"name": "cust2", "password": PASSWORD, "roles": []})
    assert made.status_code == 201, made.text
    log_in(page, panel, "cust2", PASSWORD)
    page.goto(panel.url + "/account")
    page.fill("#current_password", PASSWORD)
    page.get_by_role("button", name="Generate a password for New password").click()
    generated = page.locator("#new_password").input_value()
    assert UNAMBIGUOUS.fullmatch(generated) and page.locator("#confirm_password").input_value() == generated
    with page.expect_navigation():
        page.get_by_role("button", name="Change password").click()
    assert "Your password is changed" in page.content()
    assert requests.get(panel.url + "/api/v1/operations", auth=("cust2", generated), timeout=30).status_code == 200
    assert page.js_errors == []
