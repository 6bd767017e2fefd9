"""The fnbox CLI against a real daemon: deploy, invoke, logs, list, get, delete, and exit
codes."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import CLI, FUNCTIONS


def cli(daemon, *args, data=None, env_token=True, check=None):
    env = dict(os.environ)
    env["FNBOX_URL"] = daemon.url
    if env_token:
        env["FNBOX_TOKEN"] = daemon.token
    else:
        env.pop("FNBOX_TOKEN", None)
    p = subprocess.run([CLI, *args], input=data, capture_output=True, env=env, timeout=60)
    if check is not None:
        assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
    return p


@pytest.fixture(scope="module")
def echo_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("echo-fn")
    shutil.copy(os.path.join(FUNCTIONS, "echo.so"), d / "echo.so")
    (d / "README.txt").write_text("a sample function\n")
    return str(d)


def test_deploy_invoke_list_get_delete(daemon, echo_dir):
    p = cli(daemon, "deploy", "cli-echo", echo_dir, "--runtime", "native", "--handler",
            "echo.so", "--memory", "192", "--timeout", "2000", "--env", "A=1", "-o", "json",
            check=0)
    f = json.loads(p.stdout)
    assert f["name"] == "cli-echo" and f["memory_mb"] == 192 and f["timeout_ms"] == 2000
    assert f["env"] == {"A": "1"} and f["version"] == 1

    p = cli(daemon, "invoke", "cli-echo", "--data", '{"x":1}', check=0)
    assert p.stdout == b'{"x":1}'
    p = cli(daemon, "invoke", "cli-echo", data=b"from stdin", check=0)
    assert p.stdout == b"from stdin"
    p = cli(daemon, "invoke", "cli-echo", "--data", "h", "-i", check=0)
    assert b"X-Fnbox-Start:" in p.stderr and b"Server-Timing:" in p.stderr

    p = cli(daemon, "list", check=0)
    assert b"cli-echo" in p.stdout and b"NAME" in p.stdout
    listed = json.loads(cli(daemon, "list", "-o", "json", check=0).stdout)
    assert "cli-echo" in [x["name"] for x in listed["functions"]]
    got = json.loads(cli(daemon, "get", "cli-echo", "-o", "json", check=0).stdout)
    assert got == daemon.req("GET", "/v1/functions/cli-echo").json()

    # Redeploy from a zip file: version 2.
    zip_path = os.path.join(os.path.dirname(echo_dir), "echo.zip")
    shutil.make_archive(zip_path[:-4], "zip", echo_dir)
    p = cli(daemon, "deploy", "cli-echo", zip_path, "--runtime", "native", "--handler",
            "echo.so", "-o", "json", check=0)
    assert json.loads(p.stdout)["version"] == 2

    cli(daemon, "delete", "cli-echo", check=0)
    assert daemon.req("GET", "/v1/functions/cli-echo").status_code == 404


def test_exit_codes(daemon, echo_dir):
    # 2: usage errors, checked before anything is sent.
    cli(daemon, "frobnicate", check=2)
    cli(daemon, "deploy", "bad name!", echo_dir, "--runtime", "native", "--handler", "echo.so",
        check=2)
    cli(daemon, "deploy", "x", echo_dir, "--runtime", "native", "--handler", "echo.so",
        "--env", "NOEQUALS", check=2)
    cli(daemon, "invoke", check=2)
    # 3: the API refused (unknown function, bad token).
    p = cli(daemon, "invoke", "no-such-fn", "--data", "x", check=3)
    assert b"not found" in p.stderr
    p = cli(daemon, "--token", "wrong", "list", check=3)
    assert b"token" in p.stderr.lower()
    # 4: the function failed.
    daemon.deploy("cli-probe")
    p = cli(daemon, "invoke", "cli-probe", "--data", "fail Oops bad", check=4)
    assert b"Oops" in p.stderr
    cli(daemon, "invoke", "cli-probe", "--data", "crash", check=4)
    # 1: the daemon cannot be reached.
    env = dict(os.environ, FNBOX_URL="http://127.0.0.1:1", FNBOX_TOKEN="x")
    p = subprocess.run([CLI, "list"], capture_output=True, env=env, timeout=30)
    assert p.returncode == 1


def test_token_from_state_dir(daemon):
    p = cli(daemon, "--state-dir", daemon.state_dir, "list", "-o", "json", env_token=False,
            check=0)
    assert "functions" in json.loads(p.stdout)


def test_deploy_warm_pool_options(daemon, echo_dir):
    p = cli(daemon, "deploy", "cli-pool", echo_dir, "--runtime", "native", "--handler",
            "echo.so", "--keep-alive", "0", "--max-concurrency", "3", "--min-instances", "1",
            "-o", "json", check=0)
    f = json.loads(p.stdout)
    assert (f["keep_alive_ms"], f["max_concurrency"], f["min_instances"]) == (0, 3, 1)
    got = daemon.req("GET", "/v1/functions/cli-pool").json()
    assert (got["keep_alive_ms"], got["max_concurrency"], got["min_instances"]) == (0, 3, 1)
    p = cli(daemon, "deploy", "cli-pool", echo_dir, "--runtime", "native", "--handler",
            "echo.so", "--keep-alive=86400000", "-o", "json", check=0)
    f = json.loads(p.stdout)
    # Options left out are not sent: the daemon's defaults apply, not the previous values.
    assert (f["keep_alive_ms"], f["max_concurrency"], f["min_instances"]) == (86400000, 0, 0)
    p = cli(daemon, "deploy", "cli-pool", echo_dir, "--runtime", "native", "--handler",
            "echo.so", "-o", "json", check=0)
    assert json.loads(p.stdout)["keep_alive_ms"] == 600000

    # Out of range or not an integer: a usage error, nothing sent.
    base = ["deploy", "cli-pool", echo_dir, "--runtime", "native", "--handler", "echo.so"]
    for opt, val in (("--keep-alive", "86400001"), ("--keep-alive", "-1"),
                     ("--max-concurrency", "1001"), ("--max-concurrency", "x"),
                     ("--min-instances", "1001"), ("--min-instances", "")):
        p = cli(daemon, *base, opt, val, check=2)
        assert opt.encode() in p.stderr, p.stderr
    cli(daemon, "invoke", "cli-pool", "--keep-alive", "5", check=2)
    # What only the daemon checks: min_instances above max_concurrency.
    p = cli(daemon, *base, "--max-concurrency", "1", "--min-instances", "2", check=3)
    assert b"min_instances" in p.stderr
    assert daemon.req("GET", "/v1/functions/cli-pool").json()["keep_alive_ms"] == 600000
    cli(daemon, "delete", "cli-pool", check=0)


def test_logs(daemon):
    daemon.deploy("cli-logs", keep_alive_ms=60000)
    for k in (1, 2):
        assert daemon.invoke("cli-logs", f"print cli-line-{k}".encode()).status_code == 200

    p = cli(daemon, "logs", "cli-logs", check=0)
    out = p.stdout.decode()
    lines = out.splitlines()
    assert out.count("START RequestId: ") == 2 and out.count("END RequestId: ") == 2
    assert out.count("REPORT RequestId: ") == 2
    assert lines[0].startswith("START RequestId: ") and lines[-1].startswith("REPORT RequestId: ")
    assert out.index("cli-line-1") < out.index("cli-line-2")
    assert "err:cli-line-2" in out
    # The same bytes as the API's.
    api = daemon.req("GET", "/v1/functions/cli-logs/logs?tail=100")
    assert p.stdout == api.content

    p = cli(daemon, "logs", "cli-logs", "--tail", "2", check=0)
    tail = p.stdout.decode().splitlines()
    assert len(tail) == 2 and tail[0].startswith("END RequestId: ")
    assert tail[1].startswith("REPORT RequestId: ")
    assert cli(daemon, "logs", "-n", "2", "cli-logs", check=0).stdout == p.stdout
    assert cli(daemon, "logs", "cli-logs", "-n", "0", check=0).stdout == b""

    j = json.loads(cli(daemon, "logs", "cli-logs", "-o", "json", check=0).stdout)
    assert j["function"] == "cli-logs" and j["log"] == out
    assert j["cursor"] == int(api.headers["X-Fnbox-Log-Cursor"])

    p = cli(daemon, "logs", "no-such-fn", check=3)
    assert b"not found" in p.stderr and p.stdout == b""
    cli(daemon, "logs", "cli-logs", "--tail", "10001", check=2)
    cli(daemon, "logs", "cli-logs", "--tail", "many", check=2)
    cli(daemon, "logs", check=2)
    cli(daemon, "list", "--follow", check=2)


class Reader:
    """Collects a pipe's bytes in a thread, so a test can wait for some to arrive."""

    def __init__(self, f):
        self.data = b""
        self.f = f
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while chunk := os.read(self.f.fileno(), 65536):
            self.data += chunk

    def wait_for(self, needle, timeout=5, count=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.data.count(needle) >= count:
                return True
            time.sleep(0.05)
        return False


def follow(daemon, *args):
    env = dict(os.environ, FNBOX_URL=daemon.url, FNBOX_TOKEN=daemon.token)
    p = subprocess.Popen([CLI, "logs", "-f", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    return p, Reader(p.stdout), Reader(p.stderr)


def test_logs_follow(daemon):
    daemon.deploy("cli-follow", keep_alive_ms=60000)
    daemon.invoke("cli-follow", b"print before-follow")
    p, out, err = follow(daemon, "cli-follow")
    try:
        assert out.wait_for(b"REPORT RequestId: "), (out.data, err.data)
        assert b"before-follow" in out.data
        t0 = time.time()
        assert daemon.invoke("cli-follow", b"print after-follow").status_code == 200
        assert out.wait_for(b"err:after-follow"), (out.data, err.data)
        assert time.time() - t0 < 3
        # Only new text each round: nothing is printed twice.
        time.sleep(1.2)
        text = out.data.decode()
        lines = text.splitlines()
        assert lines.count("before-follow") == 1 and lines.count("after-follow") == 1
        assert text.count("START RequestId: ") == 2 and text.endswith("\t\n")
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=5) == 0, err.data
        p.stdout.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert err.data == b""

    # SIGTERM ends it cleanly too (once it printed, it handles the signal); deleting the function
    # ends it with 3.
    p, out, err = follow(daemon, "cli-follow", "-n", "1")
    try:
        assert out.wait_for(b"\n")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=5) == 0
        assert out.data.startswith(b"REPORT RequestId: ") and out.data.count(b"\n") == 1
        p, out, err = follow(daemon, "cli-follow", "-o", "json")
        assert out.wait_for(b"\n")
        first = json.loads(out.data.decode().splitlines()[0])
        assert first["function"] == "cli-follow" and "after-follow" in first["log"]
        daemon.invoke("cli-follow", b"print json-follow")
        assert out.wait_for(b"\n", count=2), out.data
        second = json.loads(out.data.decode().splitlines()[1])
        assert "json-follow" in second["log"] and second["cursor"] > first["cursor"]
        assert "after-follow" not in second["log"]
        assert daemon.req("DELETE", "/v1/functions/cli-follow").status_code == 204
        assert p.wait(timeout=5) == 3
        assert err.wait_for(b"not found"), err.data
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_invoke_log_tail(daemon):
    daemon.deploy("cli-tail", keep_alive_ms=60000)
    p = cli(daemon, "invoke", "cli-tail", "--data", "print in-the-tail", "--log", check=0)
    assert json.loads(p.stdout) == {"printed": True}
    err = p.stderr.decode()
    assert err.startswith("START RequestId: ") and "in-the-tail\n" in err
    assert "err:in-the-tail" in err and "END RequestId: " in err
    assert err.splitlines()[-1].startswith("REPORT RequestId: ")
    # Without it, nothing on stderr; with -i too, the headers but not the base64.
    assert cli(daemon, "invoke", "cli-tail", "--data", "print x", check=0).stderr == b""
    p = cli(daemon, "invoke", "cli-tail", "--data", "print y", "-i", "--log-tail", check=0)
    assert b"X-Fnbox-Start:" in p.stderr and b"X-Fnbox-Log-Result" not in p.stderr
    assert b"REPORT RequestId: " in p.stderr
    # Only the last 4 KiB.
    p = cli(daemon, "invoke", "cli-tail", "--data", "spam 64", "--log", check=0)
    assert 3500 < len(p.stderr) <= 4097 and b"REPORT RequestId: " in p.stderr
    # A failed invocation shows its log before the error line.
    p = cli(daemon, "invoke", "cli-tail", "--data", "fail Oops bad", "--log", check=4)
    err = p.stderr.decode().splitlines()
    assert any(x.startswith("REPORT RequestId: ") for x in err)
    assert err[-1].startswith("fnbox: ") and "Oops" in err[-1]
    cli(daemon, "logs", "cli-tail", "--log", check=2)
