"""Jobs of certificates: issuing (and renewing) one web domain's certificate."""

from __future__ import annotations

from app.jobs import job
from app.services.certificates import run_issue


@job
def issue_certificate(operation_id: int) -> None:
    """Get a CA's certificate for the operation's web domain and install it on its node."""
    run_issue(operation_id)
