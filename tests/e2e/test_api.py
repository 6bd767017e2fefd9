"""The native REST API: deploy, read, update, delete, invoke, auth and bad input."""
import base64
import json
import re

import requests

from conftest import function_bytes, zip_bytes

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def echo_files():
    return {"echo.so": function_bytes("echo.so")}


def test_healthz_needs_no_token(daemon):
    r = requests.get(daemon.url + "/healthz", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_every_v1_route_needs_the_token(daemon):
    routes = [("GET", "/v1/functions"), ("GET", "/v1/functions/x"),
              ("PUT", "/v1/functions/x"), ("DELETE", "/v1/functions/x"),
              ("POST", "/v1/functions/x/invoke")]
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": "Bearer " + daemon.token[:-1]},
                        {"Authorization": "Basic " + daemon.token},
                        {"Authorization": daemon.token}):
            r = requests.request(method, daemon.url + path, headers=headers, timeout=5)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert r.json()["error"]["type"] == "Unauthorized"


def test_deploy_create_get_list_update_delete(daemon):
    r = daemon.deploy("crud", echo_files(), handler="echo.so", memory_mb=256, timeout_ms=1500,
                      env={"A": "1"}, expect=201)
    d = r.json()
    assert d["name"] == "crud" and d["runtime"] == "native" and d["handler"] == "echo.so"
    assert d["memory_mb"] == 256 and d["timeout_ms"] == 1500 and d["env"] == {"A": "1"}
    assert d["version"] == 1 and re.fullmatch(r"[0-9a-f]{64}", d["code_sha256"])
    assert d["created_at"].endswith("Z") and d["updated_at"].endswith("Z")

    g = daemon.req("GET", "/v1/functions/crud")
    assert g.status_code == 200 and g.json() == d
    names = [f["name"] for f in daemon.req("GET", "/v1/functions").json()["functions"]]
    assert "crud" in names

    # Update with different code: 200, version 2, new digest; defaults apply to omitted fields.
    files = dict(echo_files(), **{"extra.txt": b"v2"})
    u = daemon.deploy("crud", files, handler="echo.so", expect=200).json()
    assert u["version"] == 2 and u["code_sha256"] != d["code_sha256"]
    assert u["memory_mb"] == 128 and u["timeout_ms"] == 3000 and u["env"] == {}
    assert u["created_at"] == d["created_at"]

    r = daemon.invoke("crud", b"still works")
    assert r.status_code == 200 and r.content == b"still works"

    assert daemon.req("DELETE", "/v1/functions/crud").status_code == 204
    assert daemon.req("GET", "/v1/functions/crud").status_code == 404
    assert daemon.req("DELETE", "/v1/functions/crud").status_code == 404
    r = daemon.invoke("crud", b"x")
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"


def test_invoke_echo_headers_and_timing(daemon):
    daemon.deploy("echo", echo_files(), handler="echo.so")
    r = daemon.invoke("echo", b'{"hello":"world"}')
    assert r.status_code == 200
    assert r.content == b'{"hello":"world"}'
    assert UUID.match(r.headers["X-Fnbox-Invocation-Id"])
    assert r.headers["X-Fnbox-Start"] in ("cold", "prewarmed", "warm")
    timing = dict(re.findall(r"([a-z-]+);dur=([0-9.]+)", r.headers["Server-Timing"]))
    if r.headers["X-Fnbox-Start"] == "cold":
        for phase in ("sandbox", "agent", "load", "run"):
            assert phase in timing, r.headers["Server-Timing"]
    assert float(timing["total"]) > 0
    # Two invocations get two ids.
    r2 = daemon.invoke("echo", b"")
    assert r2.status_code == 200 and r2.content == b""
    assert r2.headers["X-Fnbox-Invocation-Id"] != r.headers["X-Fnbox-Invocation-Id"]


def test_invoke_large_payload_round_trip(daemon):
    daemon.deploy("echo-big", echo_files(), handler="echo.so", memory_mb=256)
    payload = bytes(range(256)) * (5 * 1024 * 1024 // 256)  # 5 MiB: travels in a memfd
    r = daemon.invoke("echo-big", payload)
    assert r.status_code == 200
    assert r.content == payload


def test_invoke_payload_over_6_mib_is_413(daemon):
    daemon.deploy("echo-413", echo_files(), handler="echo.so")
    r = daemon.invoke("echo-413", b"x" * (6 * 1024 * 1024 + 1))
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "PayloadTooLarge"
    # Exactly 6 MiB is accepted.
    r = daemon.invoke("echo-413", b"y" * (6 * 1024 * 1024))
    assert r.status_code == 200 and len(r.content) == 6 * 1024 * 1024


def test_unknown_function_is_404(daemon):
    r = daemon.invoke("nope", b"{}")
    assert r.status_code == 404
    assert r.json()["error"] == {"type": "NotFound", "message": "function 'nope' not found"}


def bad_deploy(daemon, name, body, raw=False):
    data = body if raw else json.dumps(body)
    return daemon.req("PUT", f"/v1/functions/{name}", data=data)


def valid_body(**over):
    b = {"runtime": "native", "handler": "echo.so",
         "code": base64.b64encode(zip_bytes({"echo.so": function_bytes("echo.so")})).decode()}
    b.update(over)
    return b


def test_bad_input_is_400_naming_the_problem(daemon):
    cases = [
        ("{not json", True, "JSON"),
        ("[1,2]", True, "object"),
        (valid_body(mounts=["/"]), False, "mounts"),
        (valid_body(memory_mb="128"), False, "memory_mb"),
        (valid_body(memory_mb=128.5), False, "memory_mb"),
        (valid_body(memory_mb=1), False, "memory_mb"),
        (valid_body(timeout_ms=0), False, "timeout_ms"),
        (valid_body(timeout_ms=10**9), False, "timeout_ms"),
        (valid_body(runtime="cobol"), False, "runtime"),
        (valid_body(handler="/etc/passwd.so"), False, "handler"),
        (valid_body(handler="../x.so"), False, "handler"),
        (valid_body(env=["A"]), False, "env"),
        (valid_body(env={"1BAD": "x"}), False, "env"),
        (valid_body(env={"A": 1}), False, "env"),
        (valid_body(code="!!!not base64!!!"), False, "code"),
        ({"runtime": "native", "handler": "echo.so"}, False, "code"),
        (valid_body(code=base64.b64encode(b"this is not an archive").decode()), False, "bundle"),
        (valid_body(handler="missing.so"), False, "missing.so"),
    ]
    for body, raw, word in cases:
        r = bad_deploy(daemon, "bad", body, raw)
        assert r.status_code == 400, (body if raw else list(body), r.text)
        err = r.json()["error"]
        assert err["type"] == "BadRequest"
        assert word.lower() in err["message"].lower(), (word, err["message"])
    # Nothing was created by any of them.
    assert daemon.req("GET", "/v1/functions/bad").status_code == 404


def test_bad_names_are_400(daemon):
    for name in ("a" * 65, "has.dot", "sp%20ace", "%C3%A9t%C3%A9"):
        r = daemon.req("PUT", f"/v1/functions/{name}", json=valid_body())
        assert r.status_code == 400, (name, r.text)
        assert "name" in r.json()["error"]["message"]
    r = daemon.deploy("a" * 64, echo_files(), handler="echo.so", expect=201)
    assert r.json()["name"] == "a" * 64
    assert daemon.req("DELETE", "/v1/functions/" + "a" * 64).status_code == 204


def test_deploy_body_over_64_mib_is_413(daemon):
    r = daemon.req("PUT", "/v1/functions/huge", data=b"x" * (64 * 1024 * 1024 + 1))
    assert r.status_code == 413
    assert daemon.req("GET", "/v1/functions/huge").status_code == 404


def test_wrong_method_is_405_and_unknown_route_404(daemon):
    r = daemon.req("POST", "/v1/functions")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    r = daemon.req("GET", "/v1/functions/x/invoke")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    r = daemon.req("GET", "/v1/nothing")
    assert r.status_code == 404


def test_invocation_record_keeps_output(daemon, probe_fn):
    r = daemon.invoke(probe_fn, b"print hello-from-the-function")
    assert r.status_code == 200
    iid = r.headers["X-Fnbox-Invocation-Id"]
    rec = daemon.req("GET", f"/v1/invocations/{iid}").json()
    assert rec["id"] == iid and rec["function"] == probe_fn and rec["outcome"] == "ok"
    assert "hello-from-the-function" in rec["log"]
    assert "err:hello-from-the-function" in rec["log"]
    assert rec["log_truncated"] is False
    assert rec["billed_ms"] >= 1


def test_output_is_capped_with_a_marker(daemon, probe_fn):
    r = daemon.invoke(probe_fn, b"spam 512")
    assert r.status_code == 200
    rec = daemon.req("GET", "/v1/invocations/" + r.headers["X-Fnbox-Invocation-Id"]).json()
    assert rec["log_truncated"] is True
    assert "[fnbox: output truncated]" in rec["log"]
    assert len(rec["log"]) <= 64 * 1024 + 1024  # the cap, the marker and the framing lines
