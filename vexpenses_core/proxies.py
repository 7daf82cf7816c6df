"""Which client address to believe: ``X-Forwarded-*`` only from configured proxies.

WebOb's ``request.client_addr`` takes the first ``X-Forwarded-For`` entry
whoever sent it, and waitress leaves that header in place even after it has
used it. So a client could pick the address that the rate limits count, the
sessions list shows and the audit log records. This tween runs before
anything else and leaves one truth in the environ:

- ``REMOTE_ADDR`` is the peer, unless the peer is in
  ``vexpenses.trusted_proxies``; then it is the nearest ``X-Forwarded-For``
  hop that is not itself a trusted proxy (the proxies append, so the hops a
  client wrote are further left and never reached).
- Every forwarded header is removed, so no later code can trust one.

URLs are never built from ``Host`` or ``X-Forwarded-Host`` (see
``vexpenses.base_url``), so those need no rewriting here.
"""

import ipaddress

from pyramid.tweens import INGRESS

FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_X_FORWARDED_BY",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)


def parse_networks(values):
    """``["10.0.0.1", "192.168.0.0/16"]`` -> networks; ValueError names a bad one."""
    return [ipaddress.ip_network(value, strict=False) for value in values]


def _address(text):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address, networks):
    return address is not None and any(address in network for network in networks)


def client_address(environ, networks):
    """The address to believe for this request, from ``REMOTE_ADDR`` and the proxies' hops."""
    peer = environ.get("REMOTE_ADDR")
    if not networks or not _trusted(_address(peer or ""), networks):
        return peer
    hops = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # garbage in the chain: stop at the last proxy we trust
            return peer
        if not _trusted(address, networks):
            return str(address)
        peer = str(address)
    return peer


def forwarded_headers_tween_factory(handler, registry):
    networks = parse_networks(registry.settings["vexpenses.trusted_proxies"])

    def tween(request):
        environ = request.environ
        address = client_address(environ, networks)
        if address is not None:
            environ["REMOTE_ADDR"] = address
        for name in FORWARDED_HEADERS:
            environ.pop(name, None)
        return handler(request)

    return tween


def includeme(config):
    config.add_tween("vexpenses_core.proxies.forwarded_headers_tween_factory", under=INGRESS)
