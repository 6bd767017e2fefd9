"""End-to-end fixtures: a real fnboxd on a temp state dir and a free loopback port.

Environment (set by tools/test.sh): FNBOXD, FNBOX_AGENT, FNBOX_CLI, FNBOX_FUNCTIONS (the dir
holding the built test functions echo.so and probe.so).
"""
import base64
import io
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import zipfile

import pytest
import requests

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FNBOXD = os.environ.get("FNBOXD", os.path.join(TOP, "build/daemon/fnboxd"))
AGENT = os.environ.get("FNBOX_AGENT", os.path.join(TOP, "build/agent/fnbox-agent"))
CLI = os.environ.get("FNBOX_CLI", os.path.join(TOP, "build/tools/fnbox"))
FUNCTIONS = os.environ.get("FNBOX_FUNCTIONS", os.path.join(TOP, "build/tests/functions"))
CGROUP_CONTROLLERS = ("memory", "cpu", "pids", "freezer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zip_bytes(files):
    """files: {name: bytes or (bytes, mode)} -> zip archive bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            mode = 0o644
            if isinstance(data, tuple):
                data, mode = data
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def function_bytes(name):
    with open(os.path.join(FUNCTIONS, name), "rb") as f:
        return f.read()


class Daemon:
    def __init__(self, state_dir, cgroup_parent, extra_args=()):
        self.state_dir = state_dir
        self.cgroup_parent = cgroup_parent
        self.extra_args = list(extra_args)
        self.port = None
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(state_dir), "fnboxd.log")
        self.session = requests.Session()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.port = self.port or free_port()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [FNBOXD, "--listen", f"127.0.0.1:{self.port}", "--state-dir", self.state_dir,
             "--agent", AGENT, "--cgroup-parent", self.cgroup_parent] + self.extra_args,
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fnboxd exited with {self.proc.returncode}: {self.read_log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("fnboxd did not become healthy: " + self.read_log())
        with open(os.path.join(self.state_dir, "token")) as f:
            self.token = f.read().strip()
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            rc = self.proc.returncode
            self.proc = None
            self.log.close()
            return rc
        return None

    def restart(self):
        assert self.stop() == 0, self.read_log()
        return self.start()

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    # --- API helpers ---
    def req(self, method, path, **kw):
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.url + path, **kw)

    def deploy(self, name, files=None, handler="probe.so", runtime="native", expect=(200, 201),
               **fields):
        if files is None:
            files = {"probe.so": function_bytes("probe.so")}
        body = {"runtime": runtime, "handler": handler,
                "code": base64.b64encode(zip_bytes(files)).decode()}
        body.update(fields)
        r = self.req("PUT", f"/v1/functions/{name}", json=body)
        if expect is not None:
            assert r.status_code in ((expect,) if isinstance(expect, int) else expect), r.text
        return r

    def invoke(self, name, data=b"", **kw):
        return self.req("POST", f"/v1/functions/{name}/invoke", data=data, **kw)

    def probe(self, name, cmd, expect=200):
        r = self.invoke(name, cmd.encode())
        assert r.status_code == expect, (r.status_code, r.text)
        return r.json()

    # --- leftovers ---
    def sandbox_cgroups(self):
        left = []
        for c in CGROUP_CONTROLLERS:
            d = f"/sys/fs/cgroup/{c}/{self.cgroup_parent}"
            if os.path.isdir(d):
                left += [f"{c}/{e}" for e in os.listdir(d)
                         if os.path.isdir(os.path.join(d, e))]
        return left

    def sandbox_mounts(self):
        # The run dir itself is a mount (the shared mount point stem cells receive code
        # through); what must not be left is any mount below it.
        run = os.path.realpath(os.path.join(self.state_dir, "run")) + "/"
        with open("/proc/self/mountinfo") as f:
            return [line for line in f if line.split()[4].startswith(run)]

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def children(self):
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def wait_clean(self, timeout=5):
        """Waits until the daemon has no sandbox left: no child, cgroup or mount."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.children() and not self.sandbox_cgroups() and not self.sandbox_mounts():
                return True
            time.sleep(0.05)
        return False


@pytest.fixture(scope="module")
def daemon():
    if os.geteuid() != 0:
        pytest.skip("fnboxd needs root")
    with tempfile.TemporaryDirectory(prefix="fnbox-e2e-") as tmp:
        # No prewarmed sandboxes here, so "nothing left" checks see only what a test made.
        d = Daemon(os.path.join(tmp, "state"), f"fnbox-e2e-{os.getpid()}", ["--prewarm", "0"])
        d.start()
        try:
            yield d
        finally:
            rc = d.stop()
            assert rc == 0, f"fnboxd exited with {rc}: {d.read_log()}"
            cleanup_cgroup_parent(d.cgroup_parent)


def cleanup_cgroup_parent(parent):
    for c in CGROUP_CONTROLLERS:
        try:
            os.rmdir(f"/sys/fs/cgroup/{c}/{parent}")
        except OSError:
            pass


@pytest.fixture(scope="module")
def probe_fn(daemon):
    """A deployed probe function (128 MB, 3 s)."""
    daemon.deploy("probe", env={"MY_VAR": "hello"},
                  memory_mb=128, timeout_ms=3000)
    return "probe"
