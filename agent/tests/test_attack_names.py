"""A hostile customer's names: a name the validators let through must be the one
name every other check compares, or it slips past uniqueness and the master's name registry."""

from __future__ import annotations

import pytest

from agent import validation as v


@pytest.mark.parametrize("given", ["victim.example..", "victim.example...", "VICTIM.example.."])
def test_a_name_with_more_than_one_final_dot_is_refused(given):
    """domain_name strips one final dot and IDNA keeps the next: "victim.example.." came back as
    "victim.example." — a name distinct from "victim.example" for the agent's duplicate check and the
    master's claims, accepted as a web domain (a vhost nginx never matches) and a mail domain (exim's
    local_domains gets "victim.example.", matching nothing); only bind's checker refused the zone. An
    empty label is refused, naming the field."""
    with pytest.raises(v.ValidationError) as refused:
        v.domain_name(given, "name")
    assert refused.value.field == "name"


def test_one_final_dot_still_names_the_domain():
    """The absolute form of a name (one final dot) is the name itself."""
    assert v.domain_name("victim.example.", "name") == "victim.example"
