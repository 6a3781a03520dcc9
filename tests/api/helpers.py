"""What the API tests share: HTTP Basic headers and the keys every node in the API has."""

import base64

from tests.conftest import Users

NODE_KEYS = {"id", "name", "address", "state", "roles", "is_local", "maintenance", "users_locked", "last_seen"}


def basic(name, password=Users.PASSWORD):
    """An Authorization header for HTTP Basic."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}
