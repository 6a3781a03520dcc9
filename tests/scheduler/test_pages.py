"""System → Scheduler: the list page with its add form; each change a distributed request."""

from __future__ import annotations

import pytest

from tests.system_list_pages import check_add_answers_at_once, check_hostile_values, fields_of

PATH = "/system/scheduler"


@pytest.mark.parametrize("hx", [False, True])
def test_add_answers_at_once_and_the_operation_page_shows_the_result(admin, app, agent_nodes, hx):
    check_add_answers_at_once(admin, app, agent_nodes, PATH, hx)


@pytest.mark.parametrize("field", fields_of(PATH))
def test_hostile_values_in_forms_show_the_error_under_the_field(admin, app, field):
    check_hostile_values(admin, app, PATH, field)
