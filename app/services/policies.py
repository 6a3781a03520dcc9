"""Cluster-wide policies: one row, created with the defaults on first read."""

from app.extensions import db
from app.models import Policy


def get_policy() -> Policy:
    """The policy row, created with defaults when missing."""
    policy = db.session.get(Policy, 1)
    if policy is None:
        policy = Policy(id=1)
        db.session.add(policy)
        db.session.commit()
    return policy
