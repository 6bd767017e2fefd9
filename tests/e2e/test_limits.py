"""Limits that hold: time, memory, processes; and nothing of a sandbox is left afterwards."""
import shutil
import time

import pytest

from conftest import function_bytes


@pytest.fixture(scope="module")
def limited(daemon):
    # keep_alive_ms 0: every sandbox goes after its call, so leftovers are visible.
    daemon.deploy("limited", memory_mb=64, timeout_ms=1000, keep_alive_ms=0)
    return "limited"


def assert_clean(daemon):
    assert daemon.wait_clean(), (daemon.children(), daemon.sandbox_cgroups(),
                                 daemon.sandbox_mounts())


def test_timeout_kills_and_answers_504_in_time(daemon, limited):
    t0 = time.monotonic()
    r = daemon.invoke(limited, b"sleep 10000")
    elapsed = time.monotonic() - t0
    assert r.status_code == 504
    assert r.json()["error"]["type"] == "Timeout"
    assert "1.00 seconds" in r.json()["error"]["message"]
    assert 1.0 <= elapsed < 2.0, elapsed
    assert_clean(daemon)


def test_timeout_of_a_busy_loop_with_children(daemon, limited):
    # Children forked by the function die with it.
    daemon.invoke(limited, b"forkbomb 5")  # leaves 5 children in that sandbox, which is retired
    t0 = time.monotonic()
    r = daemon.invoke(limited, b"spin 5000")
    assert r.status_code == 504 and time.monotonic() - t0 < 2.0
    assert_clean(daemon)


def test_memory_limit_answers_out_of_memory(daemon, limited):
    r = daemon.invoke(limited, b"memhog 200")
    assert r.status_code == 502
    assert r.json()["error"]["type"] == "OutOfMemory"
    assert "64 MB" in r.json()["error"]["message"]
    assert_clean(daemon)
    # Under the limit is fine.
    r = daemon.invoke(limited, b"memhog 16")
    assert r.status_code == 200 and r.json()["allocated_mb"] == 16
    assert int(r.headers["X-Fnbox-Max-Memory-Used-Mb"]) >= 16


def test_fork_bomb_is_held(daemon, limited):
    r = daemon.invoke(limited, b"forkbomb")
    assert r.status_code == 200
    res = r.json()
    assert 0 < res["forked"] < 64 and res["errno"] == 11  # EAGAIN from the pids limit
    assert_clean(daemon)


def test_crash_answers_crashed(daemon, limited):
    r = daemon.invoke(limited, b"crash")
    assert r.status_code == 502
    err = r.json()["error"]
    assert err["type"] == "Crashed" and "signal 11" in err["message"]
    rec = daemon.req("GET", "/v1/invocations/" + r.headers["X-Fnbox-Invocation-Id"]).json()
    assert rec["outcome"] == "crashed"
    assert "probe" in rec["log"]  # what it wrote to stderr before dying is kept
    assert_clean(daemon)


def test_exit_answers_crashed(daemon, limited):
    r = daemon.invoke(limited, b"exit 3")
    assert r.status_code == 502
    assert r.json()["error"]["type"] == "Crashed"
    assert "code 3" in r.json()["error"]["message"]


def test_function_error(daemon, limited):
    r = daemon.invoke(limited, b"fail MyError it broke")
    assert r.status_code == 502
    assert r.json()["error"] == {"type": "MyError", "message": "it broke"}
    assert r.headers["X-Fnbox-Function-Error"] == "MyError"


def test_init_error(daemon):
    daemon.deploy("noinit", handler="probe.so:no_such_symbol")
    r = daemon.invoke("noinit", b"status")
    assert r.status_code == 502
    assert r.json()["error"]["type"] == "InitError"
    assert r.json()["error"]["message"].startswith("HandlerNotFound: ")
    assert "no_such_symbol" in r.json()["error"]["message"]


def test_tmp_is_size_limited(daemon, limited):
    r = daemon.invoke(limited, b"try write /tmp/x")
    assert r.json()["ok"] is True


def test_no_leftovers_after_many_invocations(daemon, limited):
    assert_clean(daemon)
    fds_before = daemon.fd_count()
    for cmd in (b"echo a", b"crash", b"exit 1", b"fail A b", b"memhog 200", b"echo b"):
        daemon.invoke(limited, cmd)
    assert_clean(daemon)
    # Every sandbox fd (channel, pidfd, log memfd, timer) is closed again. Fewer is fine: idle
    # HTTP keep-alive connections may have closed meanwhile.
    assert daemon.fd_count() <= fds_before


def test_sandbox_that_cannot_be_made_answers_503(daemon):
    f = daemon.deploy("no-code", files={"probe.so": function_bytes("probe.so"),
                                        "unique.txt": b"only here"}, keep_alive_ms=0).json()
    code_dir = f"{daemon.state_dir}/code/{f['code_sha256']}"
    shutil.rmtree(code_dir)  # the code vanished from under the daemon
    r = daemon.invoke("no-code", b"echo x")
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["type"] == "SandboxError" and "task" in err["message"]
    assert "X-Fnbox-Invocation-Id" in r.headers
    assert_clean(daemon)
