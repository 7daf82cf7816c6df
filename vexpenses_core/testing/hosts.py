"""Hostile Host headers, and the check that nothing of them comes back."""

#: Host and X-Forwarded-Host values that must never reach a page, the OpenAPI
#: document or a paginator link. Each holds "evil", so one check finds them all.
HOSTILE_HOSTS = [
    "evil.example",
    "evil.example:8443",
    'evil.example"><script>alert(1)</script>',
    "evil.example\r\nSet-Cookie: stolen=1",
    "localhost@evil.example",
    "localhost/evil.example?x=",
    "\u00e9vil-evil.\u00f1xample".encode().decode("latin-1"),  # UTF-8 as WSGI carries it
    "evil.example\x00",
]


def hostile_host_environ(host):
    """The environ of a request whose Host and every forwarded header are ``host``."""
    return {
        "HTTP_HOST": host,
        "HTTP_X_FORWARDED_HOST": host,
        "HTTP_X_FORWARDED_PROTO": "javascript",
        "HTTP_FORWARDED": f'host="{host}";proto=javascript',
    }


def assert_not_reflected(response, marker="evil"):
    """Neither the body nor a header of ``response`` carries ``marker``."""
    assert marker not in response.body.decode("utf-8", "replace").lower()
    for name, value in response.headerlist:
        assert marker not in value.lower(), (name, value)
