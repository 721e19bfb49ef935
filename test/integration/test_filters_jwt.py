"""envoy.filters.http.jwt_authn end to end with real processes:
curl -> meshproxy (static bootstrap) -> python upstream.

Keys are made at test time with the openssl CLI (RSA) and os.urandom (HMAC);
tokens are built with the Python standard library and signed with
`openssl dgst` (RS256) or hmac (HS256). Covered: a valid token passes and the
upstream sees the forwarded payload header and claim header (and not the
token, forward: false); missing -> 401 "Jwt is missing" with a Bearer realm;
expired -> 401 with error="invalid_token"; wrong audience -> 403; bad
signature -> 401; allow_missing (Istio's requires_any shape); a JWKS file
and a custom header with forward: true; rules without a requirement;
PerRouteConfig disabled / requirement_name; CORS preflight bypass; stats;
remote_jwks refused by --mode validate.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest

from helpers import (MESHPROXY_BIN, bootstrap, cluster_yaml, free_port, meshproxy, python_upstream,
                     read_requests)
from pki import openssl

ISS = "https://issuer.test"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Keys:
    def __init__(self, d):
        self.d = d
        openssl(d, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", "rsa.key")
        mod = openssl(d, "rsa", "-in", "rsa.key", "-noout", "-modulus").decode()
        n = bytes.fromhex(mod.strip().split("=", 1)[1])
        self.jwks = json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256",
                                          "n": b64url(n), "e": b64url((65537).to_bytes(3, "big"))}]})
        self.secret = os.urandom(32)
        (d / "hs.jwks").write_text(json.dumps(
            {"keys": [{"kty": "oct", "kid": "h1", "k": b64url(self.secret)}]}))

    def rs256(self, claims, kid="k1"):
        head = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
        body = b64url(json.dumps(claims).encode())
        signing = ("%s.%s" % (head, body)).encode()
        sig = openssl(self.d, "dgst", "-sha256", "-sign", "rsa.key", data=signing)
        return "%s.%s" % (signing.decode(), b64url(sig))

    def hs256(self, claims):
        head = b64url(json.dumps({"alg": "HS256", "kid": "h1"}).encode())
        body = b64url(json.dumps(claims).encode())
        signing = "%s.%s" % (head, body)
        return signing + "." + b64url(hmac.new(self.secret, signing.encode(),
                                               hashlib.sha256).digest())


JWT_FILTER = """
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              bypass_cors_preflight: true
              providers:
                rsa:
                  issuer: %(iss)s
                  audiences: [svc.test]
                  local_jwks: {inline_string: '%(jwks)s'}
                  forward_payload_header: x-jwt-payload
                  payload_in_metadata: %(iss)s
                  claim_to_headers: [{header_name: x-jwt-sub, claim_name: sub}]
                hs:
                  issuer: hs-issuer
                  from_headers: [{name: x-hs-token}]
                  local_jwks: {filename: %(hsfile)s}
                  forward: true
              requirement_map:
                hsreq: {provider_name: hs}
              rules:
              - match: {prefix: /public}
              - match: {prefix: /open}
                requires:
                  requires_any:
                    requirements: [{provider_name: rsa}, {allow_missing: {}}]
              - match: {prefix: /hs}
                requirement_name: hsreq
              - match: {prefix: /}
                requires: {provider_name: rsa}"""

ROUTES = """              - match: {prefix: "/nojwt"}
                route: {cluster: up}
                typed_per_filter_config:
                  envoy.filters.http.jwt_authn:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig
                    disabled: true
              - match: {prefix: "/named"}
                route: {cluster: up}
                typed_per_filter_config:
                  envoy.filters.http.jwt_authn:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig
                    requirement_name: hsreq
              - match: {prefix: "/"}
                route: {cluster: up}"""

HCM = """
  - name: jwt
    address: {socket_address: {address: 127.0.0.1, port_value: %(port)d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: jwtin
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
%(routes)s
          http_filters:
%(filters)s
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jwt")
    keys = Keys(tmp)
    port = free_port()
    with python_upstream(tmp) as (up_port, up_log):
        filters = JWT_FILTER % dict(iss=ISS, jwks=keys.jwks, hsfile=tmp / "hs.jwks")
        cfg = bootstrap(HCM % dict(port=port, routes=ROUTES, filters=filters),
                        cluster_yaml("up", up_port))
        with meshproxy(tmp, cfg, [port]) as proxy:
            yield "http://127.0.0.1:%d" % port, keys, up_log, proxy


def curl(*args, timeout=10):
    """(code, headers dict lower-cased, body) of one request."""
    r = subprocess.run(["curl", "-s", "-i", "--max-time", str(timeout), *args],
                       capture_output=True, text=True, timeout=timeout + 10)
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    code = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return code, headers, body


def last_request(up_log, path):
    reqs = [r for r in read_requests(up_log) if r["path"] == path]
    assert reqs, "upstream never saw %s" % path
    return reqs[-1]


def good_claims(**over):
    now = int(time.time())
    c = {"iss": ISS, "sub": "alice", "aud": "svc.test", "iat": now, "exp": now + 600}
    c.update(over)
    return c


def test_valid_token_passes_and_payload_is_forwarded(env):
    base, keys, up_log, proxy = env
    claims = good_claims()
    tok = keys.rs256(claims)
    code, _, body = curl("-H", "Authorization: Bearer " + tok, base + "/api/v1")
    assert code == 200 and body == "ok /api/v1\n"
    seen = last_request(up_log, "/api/v1")["headers"]
    payload = seen["x-jwt-payload"]
    assert payload == tok.split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == claims
    assert seen["x-jwt-sub"] == "alice"
    assert "authorization" not in seen  # forward: false strips the token
    # HTTP/2 too
    code, _, _ = curl("--http2-prior-knowledge", "-H", "Authorization: Bearer " + tok,
                      base + "/api/h2")
    assert code == 200


def test_missing_token_is_401_with_bearer_realm(env):
    base, _, up_log, _ = env
    code, headers, body = curl(base + "/api/secret?q=1")
    assert code == 401 and body == "Jwt is missing"
    assert headers["www-authenticate"] == 'Bearer realm="http://%s/api/secret"' % base[7:]
    assert not [r for r in read_requests(up_log) if r["path"].startswith("/api/secret")]


def test_expired_bad_signature_wrong_audience(env):
    base, keys, _, _ = env
    now = int(time.time())
    tok = keys.rs256(good_claims(exp=now - 3600, iat=now - 7200))
    code, headers, body = curl("-H", "Authorization: Bearer " + tok, base + "/api")
    assert code == 401 and body == "Jwt is expired"
    assert headers["www-authenticate"].endswith(', error="invalid_token"')
    # within clock_skew_seconds (60 s by default) it is still valid
    tok = keys.rs256(good_claims(exp=now - 20))
    assert curl("-H", "Authorization: Bearer " + tok, base + "/api")[0] == 200

    tok = keys.rs256(good_claims(sub="mallory"))
    head, payload, sig = tok.split(".")
    forged = "%s.%s.%s" % (head, b64url(json.dumps(good_claims(sub="admin")).encode()), sig)
    code, _, body = curl("-H", "Authorization: Bearer " + forged, base + "/api")
    assert code == 401 and body == "Jwt verification fails"

    code, _, body = curl("-H", "Authorization: Bearer " + keys.rs256(good_claims(aud="other")),
                         base + "/api")
    assert code == 403 and body == "Audiences in Jwt are not allowed"

    code, _, body = curl("-H", "Authorization: Bearer " + keys.rs256(good_claims(), kid="zz"),
                         base + "/api")
    assert code == 401 and body == "Jwks doesn't have key to match kid or alg from Jwt"

    code, _, body = curl("-H", "Authorization: Bearer not.a.jwt!", base + "/api")
    assert code == 401

    code, _, body = curl("-H", "Authorization: Bearer " + keys.rs256(good_claims(iss="evil")),
                         base + "/api")
    assert code == 401 and body == "Jwt issuer is not configured"


def test_allow_missing_and_no_requirement(env):
    base, keys, _, _ = env
    assert curl(base + "/open/x")[0] == 200  # no token: allowed
    tok = keys.rs256(good_claims())
    assert curl("-H", "Authorization: Bearer " + tok, base + "/open/x")[0] == 200
    expired = keys.rs256(good_claims(exp=int(time.time()) - 3600))
    code, _, body = curl("-H", "Authorization: Bearer " + expired, base + "/open/x")
    assert code == 401 and body == "Jwt is expired"  # present but invalid: rejected
    assert curl(base + "/public/x")[0] == 200  # a rule with no requirement


def test_hs256_from_file_custom_header_forwarded(env):
    base, keys, up_log, _ = env
    tok = keys.hs256({"iss": "hs-issuer", "sub": "bob"})
    code, _, _ = curl("-H", "x-hs-token: " + tok, base + "/hs/1")
    assert code == 200
    assert last_request(up_log, "/hs/1")["headers"]["x-hs-token"] == tok  # forward: true
    assert curl(base + "/hs/2")[0] == 401
    # an RS256 token in the hs provider's header: wrong issuer
    code, _, body = curl("-H", "x-hs-token: " + keys.rs256(good_claims()), base + "/hs/3")
    assert code == 401 and body == "Jwt issuer is not configured"


def test_per_route_config(env):
    base, keys, _, _ = env
    assert curl(base + "/nojwt/x")[0] == 200  # PerRouteConfig disabled
    assert curl(base + "/named/x")[0] == 401  # requirement_name: hsreq
    tok = keys.hs256({"iss": "hs-issuer"})
    assert curl("-H", "x-hs-token: " + tok, base + "/named/x")[0] == 200


def test_cors_preflight_bypass_and_stats(env):
    base, _, _, proxy = env
    before = proxy.stats()
    code, _, _ = curl("-X", "OPTIONS", "-H", "Origin: https://web.test",
                      "-H", "Access-Control-Request-Method: GET", base + "/api/cors")
    assert code == 501  # the upstream's answer: python's http.server has no OPTIONS
    code, _, _ = curl("-X", "OPTIONS", base + "/api/cors")  # not a preflight
    assert code == 401
    deadline = time.monotonic() + 5
    while True:
        st = proxy.stats()
        if st.get("http.jwtin.jwt_authn.denied", 0) > before.get("http.jwtin.jwt_authn.denied", 0) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    name = "http.jwtin.jwt_authn.cors_preflight_bypassed"
    assert st[name] - before.get(name, 0) == 1
    assert st["http.jwtin.jwt_authn.denied"] - before.get("http.jwtin.jwt_authn.denied", 0) == 1
    assert st["http.jwtin.jwt_authn.allowed"] >= 5


def test_remote_jwks_is_refused(tmp_path):
    cfg = bootstrap(HCM % dict(port=free_port(), routes="""              - match: {prefix: "/"}
                route: {cluster: up}""", filters="""
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                p:
                  remote_jwks:
                    http_uri: {uri: "https://idp.test/jwks", cluster: up, timeout: 1s}"""),
                    cluster_yaml("up", 1))
    path = tmp_path / "remote.yaml"
    path.write_text(cfg.replace("{admin}", "0"))
    r = subprocess.run([MESHPROXY_BIN, "--mode", "validate", "-c", str(path), "-l", "off"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "remote_jwks: fetching JWKS over HTTP is not supported" in r.stdout + r.stderr
