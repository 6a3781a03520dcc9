"""Load the lab's pytest plugin for the lab's own tests unless the root conftest already did."""

import sys

if "tests.lab.fixtures" not in sys.modules:
    # Defining the fixtures here a second time would give tests/lab a second lab session.
    from tests.lab.fixtures import (  # noqa: F401
        _lab_session,
        lab,
        lab_nodes,
        pytest_collection_finish,
        pytest_collection_modifyitems,
        pytest_configure,
    )
