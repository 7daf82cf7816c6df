"""Issue 9, class 6: the client address comes from X-Forwarded-For only when a
configured proxy sent it."""

import pytest

from vexpenses_core.proxies import client_address, parse_networks
from vexpenses_core.settings import ConfigurationError, normalize_settings
from vexpenses_core.testing import make_user

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"])

# (peer, X-Forwarded-For, the address to believe)
ADDRESS_CASES = [
    # no trusted peer: the header is the client's own words
    ("198.51.100.7", "1.2.3.4", "198.51.100.7"),
    ("198.51.100.7", "127.0.0.1", "198.51.100.7"),
    # the proxy appends the real peer; what the client wrote is further left
    ("127.0.0.1", "6.6.6.6, 203.0.113.5", "203.0.113.5"),
    ("127.0.0.1", "203.0.113.5, 10.1.2.3", "203.0.113.5"),
    ("127.0.0.1", "2001:db8::7", "2001:db8::7"),
    ("::1", "203.0.113.5", "203.0.113.5"),
    # garbage or nothing: stop at the last proxy we trust
    ("127.0.0.1", "", "127.0.0.1"),
    ("127.0.0.1", "not-an-ip", "127.0.0.1"),
    ("127.0.0.1", "6.6.6.6, <script>", "127.0.0.1"),
    ("127.0.0.1", "1.2.3.4\r\nX-Evil: 1", "127.0.0.1"),
    ("127.0.0.1", "10.0.0.9, 10.0.0.8", "10.0.0.9"),
    ("127.0.0.1", "," * 10_000, "127.0.0.1"),
    ("127.0.0.1", "1.2.3.4:80", "127.0.0.1"),
]


@pytest.mark.parametrize(("peer", "forwarded", "expected"), ADDRESS_CASES)
def test_client_address(peer, forwarded, expected):
    environ = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded}
    assert client_address(environ, PROXIES) == expected


def test_nothing_is_trusted_by_default():
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}
    assert normalize_settings({})["vexpenses.trusted_proxies"] == []
    assert client_address(environ, []) == "127.0.0.1"


def test_trusted_proxies_setting_is_checked():
    settings = normalize_settings({"vexpenses.trusted_proxies": "127.0.0.1, 10.0.0.0/8"})
    assert settings["vexpenses.trusted_proxies"] == ["127.0.0.1", "10.0.0.0/8"]
    assert normalize_settings(settings)["vexpenses.trusted_proxies"] == ["127.0.0.1",
                                                                        "10.0.0.0/8"]
    with pytest.raises(ConfigurationError, match="vexpenses.trusted_proxies"):
        normalize_settings({"vexpenses.trusted_proxies": "proxy.internal"})


def login(app, email, forwarded, status):
    return app.post_json("/api/v1/user/authenticate",
                         {"email": email, "password": "wrong password"},
                         headers={"X-Forwarded-For": forwarded}, status=status)


def test_forged_forwarded_for_gets_no_fresh_login_attempts(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.ratelimit.login_ip": "2 per minute"})
    # different accounts, so only the per-address limit can answer 429
    login(app, "a@example.com", "1.1.1.1", 401)
    login(app, "b@example.com", "2.2.2.2", 401)
    res = login(app, "c@example.com", "3.3.3.3", 429)
    assert res.headers["Retry-After"]


def sessions_address(app, token):
    res = app.get("/api/v1/user/sessions", headers={"Authorization": f"Bearer {token}"})
    return res.json["data"][0]["ip_address"]


def log_in(app, forwarded, peer):
    res = app.post_json("/api/v1/user/authenticate",
                        {"email": "ana@example.com", "password": "a password 123"},
                        headers={"X-Forwarded-For": forwarded},
                        extra_environ={"REMOTE_ADDR": peer})
    return res.json["data"]["token"]


def test_recorded_address_is_the_peer_unless_a_trusted_proxy_forwarded(make_testapp):
    app = make_testapp(**{"vexpenses.trusted_proxies": "10.0.0.1"})
    make_user(app.app.registry, email="ana@example.com", password="a password 123")
    token = log_in(app, "1.2.3.4", peer="198.51.100.7")
    assert sessions_address(app, token) == "198.51.100.7"
    app.post_json("/api/v1/user/logout-all", headers={"Authorization": f"Bearer {token}"},
                  status=201)
    token = log_in(app, "6.6.6.6, 203.0.113.5", peer="10.0.0.1")
    assert sessions_address(app, token) == "203.0.113.5"
