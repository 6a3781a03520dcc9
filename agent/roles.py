"""The roles a node can have and the packages each needs: one table the agent and the master both read."""

from __future__ import annotations

from agent.validation import ValidationError, choice

ROLE_PACKAGES: dict[str, list[str]] = {
    "web": ["nginx", "php-fpm"],
    "dns": ["bind9", "bind9-utils"],
    "mail": ["exim4-daemon-heavy", "dovecot-imapd"],
    "db": ["mariadb-server"],
}


def validate_roles(value: object, field: str = "roles", *, name_items: bool = True) -> list[str]:
    """A list of known role names without repeats; a bad item is named `roles[i]` (`roles` with name_items off,
    as the panel's forms have one field for all of them)."""
    if not isinstance(value, list):
        raise ValidationError(field, "must be a list of role names")
    roles: list[str] = []
    for i, item in enumerate(value):
        role = choice(item, f"{field}[{i}]" if name_items else field, ROLE_PACKAGES)
        if role not in roles:
            roles.append(role)
    return roles
