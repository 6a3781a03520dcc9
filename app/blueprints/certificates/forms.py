"""Forms of Domains → SSL certificates; the service checks the values (the web node checks the key)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField

from app.blueprints.userdata_pages import words


class RequestForm(FlaskForm):
    """Request a CA's certificate (ACME); the names default to the site and all its aliases."""

    names = StringField("Names (default: the site and all its aliases)")

    def payload(self) -> dict:
        """The API body this form stands for."""
        return {"names": words(self.names.data)} if words(self.names.data) else {}


class UploadForm(FlaskForm):
    """A certificate of the customer's own, its chain and its private key (PEM)."""

    certificate = TextAreaField("Certificate (PEM; the chain may follow it)")
    chain = TextAreaField("Chain (PEM, optional)")
    key = TextAreaField("Private key (PEM; kept on the web node only)")

    def payload(self) -> dict:
        """The API body this form stands for."""
        data = {"certificate": self.certificate.data or "", "key": self.key.data or ""}
        if self.chain.data:
            data["chain"] = self.chain.data
        return data


class SwitchesForm(FlaskForm):
    """Redirect HTTP to HTTPS, and HSTS."""

    redirect = BooleanField("Redirect HTTP to HTTPS")
    hsts = BooleanField("HSTS (browsers keep to HTTPS for two years)")

    def payload(self) -> dict:
        """The API body this form stands for."""
        return {"redirect": bool(self.redirect.data), "hsts": bool(self.hsts.data)}
