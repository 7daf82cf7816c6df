"""Every rejected-token case of the accounts issue answers 401."""

import base64
import datetime
import json
import time
import warnings

import jwt
import pytest

from vexpenses_core.testing import JWT_SECRET, make_user


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.fixture
def user(testapp):
    registry = testapp.app.registry
    user_id, token = make_user(registry, email="tok@example.com", password="password123")
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    return {"id": user_id, "token": token, "claims": claims}


def me(testapp, token, status):
    return testapp.get("/api/v1/user/me", headers={"Authorization": f"Bearer {token}"},
                       status=status)


def forge(claims, key=JWT_SECRET, algorithm="HS256", **changes):
    with warnings.catch_warnings():  # PyJWT frowns at a short key for HS512: that's the point
        warnings.simplefilter("ignore")
        return jwt.encode({**claims, **changes}, key, algorithm=algorithm)


def test_valid_token_has_the_promised_claims(testapp, user):
    claims = user["claims"]
    assert claims["sub"] == str(user["id"])
    assert claims["typ"] == "access"
    assert set(claims) >= {"sub", "sid", "jti", "typ", "iat", "exp"}
    assert claims["exp"] - claims["iat"] == 900
    me(testapp, user["token"], 200)


def test_alg_none_is_401(testapp, user):
    header = b64({"alg": "none", "typ": "JWT"})
    token = f"{header}.{b64(user['claims'])}."
    me(testapp, token, 401)


def test_algorithm_confusion_is_401(testapp, user):
    """A token signed with HS512 (or claiming RS256) is refused: only HS256 is accepted."""
    me(testapp, forge(user["claims"], algorithm="HS512"), 401)
    header = b64({"alg": "RS256", "typ": "JWT"})
    body = b64(user["claims"])
    me(testapp, f"{header}.{body}.{user['token'].split('.')[2]}", 401)


def test_bad_signature_is_401(testapp, user):
    me(testapp, forge(user["claims"], key="another-secret-of-sufficient-length-123456"), 401)
    head, body, sig = user["token"].split(".")
    tampered = b64({**user["claims"], "sub": "999"})
    me(testapp, f"{head}.{tampered}.{sig}", 401)


def test_expired_token_is_401(testapp, user):
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    me(testapp, forge(user["claims"], exp=int(past.timestamp())), 401)


def test_refresh_token_presented_as_access_token_is_401(testapp, user):
    me(testapp, forge(user["claims"], typ="refresh"), 401)
    # and our real refresh tokens are opaque strings, not JWTs
    login = testapp.post_json("/api/v1/user/authenticate",
                              {"email": "tok@example.com", "password": "password123"})
    me(testapp, login.json["data"]["refresh_token"], 401)


def test_token_for_revoked_session_is_401(testapp, user):
    testapp.get("/api/v1/user/logout", headers={"Authorization": f"Bearer {user['token']}"},
                status=201)
    me(testapp, user["token"], 401)


def test_token_for_deleted_user_is_401(testapp, user):
    from vexpenses_core.models import User

    session = testapp.app.registry.dbsession_factory()
    session.delete(session.get(User, user["id"]))
    session.commit()
    session.close()
    me(testapp, user["token"], 401)


@pytest.mark.parametrize("change", [
    {"sub": 5}, {"sub": "abc"}, {"sub": None}, {"sid": None}, {"sid": 123}, {"sid": "x" * 40},
])
def test_malformed_claims_are_401(testapp, user, change):
    me(testapp, forge(user["claims"], **change), 401)


@pytest.mark.parametrize("claim", ["sub", "sid", "typ", "exp"])
def test_missing_claims_are_401(testapp, user, claim):
    # a token without an expiry is refused too: we never issue one
    claims = {k: v for k, v in user["claims"].items() if k != claim}
    me(testapp, forge(claims), 401)


def write_keys(tmp_path, kind):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa"
           else ed25519.Ed25519PrivateKey.generate())
    private = tmp_path / f"{kind}.pem"
    public = tmp_path / f"{kind}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(private), str(public)


@pytest.mark.parametrize("algorithm,kind", [("RS256", "rsa"), ("EdDSA", "ed25519")])
def test_asymmetric_keys_work_and_hs256_forgeries_fail(make_testapp, tmp_path, algorithm, kind):
    private, public = write_keys(tmp_path, kind)
    app = make_testapp(**{"vexpenses.jwt_algorithm": algorithm,
                          "vexpenses.jwt_private_key_file": private,
                          "vexpenses.jwt_public_key_file": public})
    user_id, token = make_user(app.app.registry, email="rsa@example.com")
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    me(app, token, 200)
    # algorithm confusion: an HS256 token keyed with the *public* key is refused
    claims = jwt.decode(token, options={"verify_signature": False})
    with open(public) as f:
        public_pem = f.read()
    confused = jwt.api_jws.PyJWS()
    header = b64({"alg": "HS256", "typ": "JWT"})
    import hashlib
    import hmac

    signing_input = f"{header}.{b64(claims)}".encode()
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem.encode(), signing_input, hashlib.sha256).digest()
    ).decode().rstrip("=")
    assert confused  # PyJWT itself refuses to sign this way; we build it by hand
    me(app, f"{header}.{b64(claims)}.{signature}", 401)


def test_keys_that_do_not_fit_the_algorithm_stop_startup(tmp_path, environ_clean):
    from vexpenses_core import make_app
    from vexpenses_core.settings import ConfigurationError

    private, public = write_keys(tmp_path, "ed25519")
    with pytest.raises(ConfigurationError, match="do not work with"):
        make_app({"vexpenses.database_url": f"sqlite:///{tmp_path}/k.db",
                  "vexpenses.jwt_algorithm": "RS256",
                  "vexpenses.jwt_private_key_file": private,
                  "vexpenses.jwt_public_key_file": public})


def test_missing_key_file_is_a_clear_error(tmp_path, environ_clean):
    from vexpenses_core import make_app
    from vexpenses_core.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="cannot read"):
        make_app({"vexpenses.database_url": f"sqlite:///{tmp_path}/k.db",
                  "vexpenses.jwt_algorithm": "RS256",
                  "vexpenses.jwt_private_key_file": str(tmp_path / "nope.pem"),
                  "vexpenses.jwt_public_key_file": str(tmp_path / "nope.pub")})


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_scheme_is_case_insensitive(testapp, user, scheme):
    testapp.get("/api/v1/user/me", headers={"Authorization": f"{scheme} {user['token']}"},
                status=200)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token {token}", "Bearer", "Bearer ",
                                    "{token}", "Bearer\t{token}", "Bearer=   {token}", ","])
def test_other_schemes_and_malformed_headers_are_401(testapp, user, header):
    testapp.get("/api/v1/user/me", headers={"Authorization": header.format(token=user["token"])},
                status=401)


def test_a_remembered_token_still_expires(testapp, user):
    soon = int(datetime.datetime.now(datetime.UTC).timestamp()) + 2
    token = forge(user["claims"], exp=soon)
    me(testapp, token, 200)  # verified once, now remembered
    time.sleep(max(soon - time.time(), 0) + 0.1)
    me(testapp, token, 401)


def test_remembered_tokens_are_bounded(testapp, user):
    policy = testapp.app.registry.security
    policy.VERIFIED_MAX = 3
    for jti in range(10):
        me(testapp, forge(user["claims"], jti=f"token-{jti}"), 200)
        assert len(policy.verified) <= 3
