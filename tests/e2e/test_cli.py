"""The fnbox CLI against a real daemon: deploy, invoke, list, get, delete, and exit codes."""
import json
import os
import shutil
import subprocess

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
