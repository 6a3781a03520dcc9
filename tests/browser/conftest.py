"""The browser tests' fixtures (tests/support/browsers.py), and the helpers their modules import from here."""

from tests.support.browsers import browser, log_in, page, panel, reset_local_node, screenshot  # noqa: F401
