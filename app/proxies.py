"""Client addresses behind a reverse proxy: forwarded headers are believed only from TRUSTED_PROXIES.

TRUSTED_PROXIES lists the addresses or networks of the proxies in front of the panel ("127.0.0.1" when
nginx runs on the same machine), comma-separated. A request whose peer is one of them is read through
Werkzeug's ProxyFix (one hop: the last X-Forwarded-For entry, which that proxy appended, and
X-Forwarded-Proto); any other request keeps its peer address, whatever headers it sends. Empty (the
default): no forwarded header is believed.
"""

from __future__ import annotations

import ipaddress

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted(value: str) -> list[Network]:
    """The networks in a TRUSTED_PROXIES value; ValueError naming the entry that is not one."""
    networks = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an address or network "
                             "(write it as '127.0.0.1' or '10.0.0.0/24, ::1')") from None
    return networks


class TrustedProxyFix:
    """WSGI middleware: ProxyFix for requests from a trusted proxy, the request as it came otherwise."""

    def __init__(self, wsgi_app, networks: list[Network]):
        self.direct = wsgi_app
        self.proxied = ProxyFix(wsgi_app, x_for=1, x_proto=1)
        self.networks = networks

    def _trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        if self._trusted(environ.get("REMOTE_ADDR", "")):
            return self.proxied(environ, start_response)
        return self.direct(environ, start_response)


def init_app(app: Flask) -> None:
    """Wrap the app when TRUSTED_PROXIES names any proxy; a value that does not parse stops the start."""
    networks = parse_trusted(app.config["TRUSTED_PROXIES"])
    if networks:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, networks)
