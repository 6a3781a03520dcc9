"""Certificates: what the master knows of each web domain's certificate (the certificate and its key
live on the web node; the key never leaves it, docs/certificates.md)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow
from app.models.userdata import WebDomainIndex


class CertificateKind(enum.StrEnum):
    """Where a web domain's certificate came from."""

    SELF_SIGNED = "self-signed"
    ACME = "acme"
    UPLOADED = "uploaded"


class CertificateState(enum.StrEnum):
    """Whether the certificate in place is what was asked for."""

    VALID = "valid"
    ISSUING = "issuing"
    FAILED = "failed"


class Certificate(db.Model):
    """One web domain's certificate as the master records it: names, issuer, dates, kind, state."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    webdomain_id: Mapped[int] = mapped_column(ForeignKey("webdomain_index.id", ondelete="CASCADE"), unique=True)
    names: Mapped[list[str]] = mapped_column(JSON, default=list)
    issuer: Mapped[str] = mapped_column(String(255), default="")
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    not_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=CertificateKind.SELF_SIGNED.value)
    state: Mapped[str] = mapped_column(String(16), default=CertificateState.VALID.value)
    last_error: Mapped[str] = mapped_column(Text, default="")
    redirect: Mapped[bool] = mapped_column(Boolean, default=False)
    hsts: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last issuing or renewal operation, and when a failed renewal may be tried again.
    operation_id: Mapped[int | None] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retry_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    webdomain: Mapped[WebDomainIndex] = relationship()
