"""The warm pool: warm after the first call, prewarmed sandboxes, scale-out, caps and 429,
keep-alive expiry, freezing idle instances, and nothing left after a delete."""
import concurrent.futures
import os
import re
import tempfile
import time

import pytest
import requests

from conftest import Daemon, cleanup_cgroup_parent


@pytest.fixture(scope="module")
def pooled():
    """A daemon with 2 prewarmed sandboxes and a short freeze grace."""
    if os.geteuid() != 0:
        pytest.skip("fnboxd needs root")
    with tempfile.TemporaryDirectory(prefix="fnbox-e2e-pool-") as tmp:
        d = Daemon(os.path.join(tmp, "state"), f"fnbox-e2e-pool-{os.getpid()}",
                   ["--prewarm", "2", "--freeze-after-ms", "300", "--queue-timeout-ms", "500"])
        d.start()
        try:
            yield d
        finally:
            rc = d.stop()
            assert rc == 0, f"fnboxd exited with {rc}: {d.read_log()}"
            cleanup_cgroup_parent(d.cgroup_parent)


def pool(d):
    return d.req("GET", "/v1/pool").json()


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_prewarmed_pool_is_filled_in_the_background(pooled):
    assert wait_for(lambda: pool(pooled)["instances_by_state"]["prewarmed"] == 2)


def test_first_call_prewarmed_then_warm(pooled):
    pooled.deploy("warmy", keep_alive_ms=60000)
    assert wait_for(lambda: pool(pooled)["instances_by_state"]["prewarmed"] == 2)
    r = pooled.invoke("warmy", b"status")
    assert r.status_code == 200
    assert r.headers["X-Fnbox-Start"] == "prewarmed"
    assert r.headers["X-Fnbox-Start-Cause"] == "first-call"
    timing = r.headers["Server-Timing"]
    assert "specialize;dur=" in timing and "load;dur=" in timing and "run;dur=" in timing
    assert "sandbox;dur=" not in timing  # it did not pay for a new sandbox
    pid_first = r.json()["invocations"]
    r2 = pooled.invoke("warmy", b"status")
    assert r2.headers["X-Fnbox-Start"] == "warm"
    assert "X-Fnbox-Start-Cause" not in r2.headers
    assert r2.json()["invocations"] == pid_first + 1  # same process: module state kept
    assert "load;dur=" not in r2.headers["Server-Timing"]
    # The pool refills its prewarmed sandboxes after one was taken.
    assert wait_for(lambda: pool(pooled)["instances_by_state"]["prewarmed"] == 2)


def test_idle_instance_is_frozen_and_thawed(pooled):
    pooled.deploy("freezy", keep_alive_ms=60000)
    pooled.invoke("freezy", b"echo 1")
    assert wait_for(lambda: pool(pooled)["instances_by_state"]["frozen"] >= 1, 3)
    # A frozen instance takes no CPU: its processes are in the frozen cgroup.
    base = f"/sys/fs/cgroup/freezer/{pooled.cgroup_parent}"
    frozen = [c for c in os.listdir(base) if os.path.isdir(os.path.join(base, c))
              and open(os.path.join(base, c, "freezer.state")).read().strip() == "FROZEN"]
    assert frozen
    r = pooled.invoke("freezy", b"echo 2")
    assert r.status_code == 200 and r.headers["X-Fnbox-Start"] == "warm"
    assert r.json() == {"echo": "2"}


def test_keep_alive_expiry_goes_back_to_cold(pooled):
    pooled.deploy("shortlived", keep_alive_ms=300)
    assert pooled.invoke("shortlived", b"echo a").status_code == 200
    time.sleep(0.8)
    r = pooled.invoke("shortlived", b"echo b")
    assert r.headers["X-Fnbox-Start"] in ("cold", "prewarmed")
    assert r.headers["X-Fnbox-Start-Cause"] == "expired"


def test_keep_alive_zero_never_keeps(pooled):
    pooled.deploy("nokeep", keep_alive_ms=0)
    pooled.invoke("nokeep", b"echo a")
    r = pooled.invoke("nokeep", b"echo b")
    assert r.headers["X-Fnbox-Start"] != "warm"
    assert r.headers["X-Fnbox-Start-Cause"] == "pool-empty"


def test_deploy_retires_the_old_version(pooled):
    pooled.deploy("versioned", keep_alive_ms=60000)
    pooled.invoke("versioned", b"echo a")
    assert pooled.invoke("versioned", b"echo a").headers["X-Fnbox-Start"] == "warm"
    pooled.deploy("versioned", keep_alive_ms=60000, env={"V": "2"})
    r = pooled.invoke("versioned", b"env V")
    assert r.headers["X-Fnbox-Start"] != "warm"
    assert r.headers["X-Fnbox-Start-Cause"] == "code-changed"
    assert r.json()["value"] == "2"


def test_failed_instance_is_never_reused(pooled):
    pooled.deploy("fragile", keep_alive_ms=60000, timeout_ms=500)
    pooled.invoke("fragile", b"echo warmup")
    r = pooled.invoke("fragile", b"sleep 2000")
    assert r.status_code == 504
    r = pooled.invoke("fragile", b"echo again")
    assert r.status_code == 200 and r.headers["X-Fnbox-Start"] != "warm"


def test_parallel_calls_scale_out(pooled):
    pooled.deploy("sleeper", keep_alive_ms=60000, timeout_ms=5000)
    n = 4
    # Warm up n instances first, so the measurement is the parallel run itself.
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        list(ex.map(lambda _: pooled.invoke("sleeper", b"sleep 300"), range(n)))
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        rs = list(ex.map(lambda _: requests.post(
            pooled.url + "/v1/functions/sleeper/invoke", data=b"sleep 1000",
            headers={"Authorization": f"Bearer {pooled.token}"}, timeout=30), range(n)))
    elapsed = time.monotonic() - t0
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
    # n calls of 1 s each in parallel take about 1 s, not n s.
    assert elapsed < 1.9, elapsed
    ids = {r.headers["X-Fnbox-Invocation-Id"] for r in rs}
    assert len(ids) == n


def test_max_concurrency_answers_429(pooled):
    pooled.deploy("capped", keep_alive_ms=60000, timeout_ms=5000, max_concurrency=1)
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        futs = [ex.submit(requests.post, pooled.url + "/v1/functions/capped/invoke",
                          data=b"sleep 1500",
                          headers={"Authorization": f"Bearer {pooled.token}"}, timeout=30)
                for _ in range(3)]
        rs = [f.result() for f in futs]
    codes = sorted(r.status_code for r in rs)
    assert codes.count(200) == 1 and codes.count(429) == 2, [(r.status_code, r.text) for r in rs]
    for r in rs:
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json()["error"]["type"] == "TooManyRequests"
    assert pool(pooled)["throttled"] >= 2


def test_queued_request_runs_when_a_slot_frees(pooled):
    pooled.deploy("queued", keep_alive_ms=60000, timeout_ms=5000, max_concurrency=1)
    pooled.invoke("queued", b"echo warm")
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        a = ex.submit(pooled.invoke, "queued", b"sleep 200")
        time.sleep(0.05)
        b = ex.submit(pooled.invoke, "queued", b"echo second")
        ra, rb = a.result(), b.result()
    assert ra.status_code == 200 and rb.status_code == 200, (ra.text, rb.text)
    assert "queue;dur=" in rb.headers["Server-Timing"]


def test_min_instances_kept_warm(pooled):
    pooled.deploy("provisioned", keep_alive_ms=60000, min_instances=2)
    # Two instances, initialised and idle (warm-idle, or frozen after the grace).
    assert wait_for(lambda: sum(1 for i in pool(pooled)["instances"]
                                if i.get("function") == "provisioned"
                                and i["state"] in ("warm-idle", "frozen")) == 2, 10)
    r = pooled.invoke("provisioned", b"echo hi")
    assert r.headers["X-Fnbox-Start"] == "warm"


def test_metrics_and_pool_report(pooled):
    pooled.deploy("counted", keep_alive_ms=60000)
    pooled.invoke("counted", b"echo 1")
    pooled.invoke("counted", b"echo 2")
    text = pooled.req("GET", "/metrics").text
    assert re.search(r'fnbox_invocations_total\{function="counted",start="warm",outcome="ok"\} 1',
                     text), text[:2000]
    assert "fnbox_invocation_duration_seconds_bucket" in text
    assert "fnbox_phase_duration_seconds_bucket{phase=\"run\"" in text
    assert "fnbox_pool_instances{state=\"warm-idle\"}" in text
    p = pool(pooled)
    assert p["starts"]["warm"] >= 1
    assert any(i.get("function") == "counted" for i in p["instances"])
    # /metrics needs the token like every other non-health route.
    assert requests.get(pooled.url + "/metrics", timeout=5).status_code == 401


def test_nothing_left_after_delete(pooled):
    pooled.deploy("gone", keep_alive_ms=60000)
    pooled.invoke("gone", b"echo 1")
    assert any(i.get("function") == "gone" for i in pool(pooled)["instances"])
    assert pooled.req("DELETE", "/v1/functions/gone").status_code == 204
    assert not any(i.get("function") == "gone" for i in pool(pooled)["instances"])
    assert pooled.invoke("gone", b"echo 1").status_code == 404


def test_config_file_sets_the_pool_and_the_command_line_wins(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("fnboxd needs root")
    conf = tmp_path / "fnboxd.conf"
    conf.write_text("# pool settings\nprewarm = 3\nqueue-timeout-ms 700\nmax-concurrency=5\n")
    d = Daemon(str(tmp_path / "state"), f"fnbox-e2e-conf-{os.getpid()}",
               ["--config", str(conf), "--max-concurrency", "7"])
    d.start()
    try:
        cfg = pool(d)["config"]
        assert cfg["prewarm_target"] == 3 and cfg["queue_timeout_ms"] == 700
        assert cfg["max_busy"] == 7  # the command line over the file
    finally:
        assert d.stop() == 0
        cleanup_cgroup_parent(d.cgroup_parent)
    bad = tmp_path / "bad.conf"
    bad.write_text("no-such-option = 1\n")
    d = Daemon(str(tmp_path / "state2"), f"fnbox-e2e-conf2-{os.getpid()}", ["--config", str(bad)])
    with pytest.raises(RuntimeError, match="exited with 2"):
        d.start()
