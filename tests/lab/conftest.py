"""Load the lab's pytest plugin for the lab's own tests."""

from tests.lab.fixtures import (  # noqa: F401
    _lab_session,
    lab,
    lab_nodes,
    pytest_collection_finish,
    pytest_collection_modifyitems,
    pytest_configure,
)
