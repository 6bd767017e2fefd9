"""Invocation logs: Lambda's START/END/REPORT framing with real figures, per invocation and per
function, following with a cursor, and X-Fnbox-Log: tail."""
import base64
import re


REPORT = re.compile(r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<dur>[0-9.]+) ms\t"
                    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<size>\d+) MB\t"
                    r"Max Memory Used: (?P<used>\d+) MB(\tInit Duration: (?P<init>[0-9.]+) ms)?\t$",
                    re.M)


def test_log_is_framed_with_real_figures(daemon):
    daemon.deploy("logged", memory_mb=192, keep_alive_ms=60000)
    r = daemon.invoke("logged", b"print hello-log")
    assert r.status_code == 200
    iid = r.headers["X-Fnbox-Invocation-Id"]
    log = daemon.req("GET", f"/v1/invocations/{iid}/logs").text
    lines = log.splitlines()
    assert lines[0] == f"START RequestId: {iid} Version: 1"
    assert "hello-log" in log and "err:hello-log" in log
    assert f"END RequestId: {iid}" in lines
    m = REPORT.search(log)
    assert m, log
    assert m["id"] == iid and m["size"] == "192"
    dur, billed = float(m["dur"]), int(m["billed"])
    # Billed is the duration rounded up to a whole millisecond (the duration shows 2 decimals).
    assert billed >= 1 and billed - 1 - 0.01 <= dur <= billed + 0.01, (dur, billed)
    assert int(m["used"]) >= 1
    assert m["init"] is not None  # a cold (or prewarmed) start reports its init
    assert int(r.headers["X-Fnbox-Billed-Duration-Ms"]) == billed
    # A warm call has no Init Duration.
    r2 = daemon.invoke("logged", b"echo again")
    log2 = daemon.req("GET", f"/v1/invocations/{r2.headers['X-Fnbox-Invocation-Id']}/logs").text
    if r2.headers["X-Fnbox-Start"] == "warm":
        assert REPORT.search(log2)["init"] is None


def test_function_logs_tail_and_follow(daemon):
    daemon.deploy("tailed", keep_alive_ms=60000)
    for k in range(3):
        daemon.invoke("tailed", f"print line-{k}".encode())
    r = daemon.req("GET", "/v1/functions/tailed/logs?tail=1000")
    assert r.status_code == 200
    text = r.text
    assert text.index("line-0") < text.index("line-1") < text.index("line-2")
    assert text.count("START RequestId") == 3
    cursor = int(r.headers["X-Fnbox-Log-Cursor"])
    # The last 2 lines only.
    r = daemon.req("GET", "/v1/functions/tailed/logs?tail=2")
    assert len(r.text.splitlines()) == 2 and r.text.splitlines()[-1].startswith("REPORT")
    # Nothing new after the cursor; then exactly the new invocation.
    r = daemon.req("GET", f"/v1/functions/tailed/logs?after={cursor}")
    assert r.text == "" and int(r.headers["X-Fnbox-Log-Cursor"]) == cursor
    daemon.invoke("tailed", b"print line-3")
    r = daemon.req("GET", f"/v1/functions/tailed/logs?after={cursor}")
    assert "line-3" in r.text and "line-2" not in r.text
    assert int(r.headers["X-Fnbox-Log-Cursor"]) > cursor
    # Bad queries and unknown functions.
    assert daemon.req("GET", "/v1/functions/tailed/logs?tail=abc").status_code == 400
    assert daemon.req("GET", "/v1/functions/tailed/logs?tail=10001").status_code == 400
    assert daemon.req("GET", "/v1/functions/no-such/logs").status_code == 404
    # Deleting the function forgets its log.
    assert daemon.req("DELETE", "/v1/functions/tailed").status_code == 204
    assert daemon.req("GET", "/v1/functions/tailed/logs").status_code == 404


def test_log_tail_header(daemon):
    daemon.deploy("tailhdr", keep_alive_ms=60000)
    r = daemon.invoke("tailhdr", b"print in-the-tail", headers={"X-Fnbox-Log": "Tail"})
    tail = base64.b64decode(r.headers["X-Fnbox-Log-Result"]).decode()
    assert "in-the-tail" in tail and "REPORT RequestId:" in tail
    assert len(base64.b64decode(r.headers["X-Fnbox-Log-Result"])) <= 4096
    r = daemon.invoke("tailhdr", b"spam 64", headers={"X-Fnbox-Log": "tail"})
    assert len(base64.b64decode(r.headers["X-Fnbox-Log-Result"])) == 4096
    assert "X-Fnbox-Log-Result" not in daemon.invoke("tailhdr", b"echo x").headers


def test_crash_output_is_kept_in_the_log(daemon):
    daemon.deploy("crashlog", keep_alive_ms=0)
    r = daemon.invoke("crashlog", b"crash")
    assert r.status_code == 502
    log = daemon.req("GET", f"/v1/invocations/{r.headers['X-Fnbox-Invocation-Id']}/logs").text
    assert "probe" in log and REPORT.search(log)
