"""Options for every test folder (tests/ and agent/tests/): which database the panel's tests use."""

import os

DIALECTS = ("sqlite", "postgresql")


def pytest_addoption(parser):
    parser.addoption(
        "--db", choices=DIALECTS, default=os.environ.get("HOSTFLEET_TEST_DB", "sqlite"),
        help="the database the `app` fixture puts the panel on (env HOSTFLEET_TEST_DB). With postgresql only "
             "the tests that use the panel's database are run, each on a database of its own in a PostgreSQL "
             "cluster the session starts.",
    )


def uses_panel_database(item) -> bool:
    """True for a test that uses the panel's `app` fixture (tests/support/panel.py), directly, through another
    fixture or through a folder's `app` built on it; the agent's tests have an `app` of their own."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.get("app", ()) if info else ()
    return any(definition.func.__module__ == "tests.support.panel" for definition in definitions)


def pytest_collection_modifyitems(config, items):
    """With --db=postgresql, keep only the tests that use the panel's database: the rest do not touch it
    and already ran in the SQLite run."""
    if config.getoption("--db") != "postgresql":
        return
    kept, left = [], []
    for item in items:
        (kept if uses_panel_database(item) else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept
