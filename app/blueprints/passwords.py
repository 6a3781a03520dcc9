"""The attributes of a field a person types a new password into: browsers offer their own generator for it,
and hostfleet.js adds a Generate button after it (without JavaScript it stays a plain field)."""

NEW_PASSWORD = {"autocomplete": "new-password", "data-generate": "password"}
