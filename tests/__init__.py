"""The panel's tests. The shared helpers in tests/support assert like tests do: pytest rewrites them too."""

import pytest

pytest.register_assert_rewrite("tests.support")
