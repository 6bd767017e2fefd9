"""Isolation, checked from inside a real sandbox by the probe function."""
import socket

import pytest


def test_identity_and_privileges(daemon, probe_fn):
    s = daemon.probe(probe_fn, "status")
    assert s["uid"] != 0 and s["gid"] != 0 and s["euid"] != 0
    assert s["groups"] == []
    assert s["pid"] == 1  # the agent is PID 1 of its own pid namespace
    assert s["hostname"] == "fnbox"
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(s[cap], 16) == 0, (cap, s[cap])
    assert s["NoNewPrivs"] == "1"
    assert s["Seccomp"] == "2"  # filter mode
    assert s["function_name"] == probe_fn and s["memory_limit_mb"] == 128


def test_function_env_is_set(daemon, probe_fn):
    assert daemon.probe(probe_fn, "env MY_VAR") == {"name": "MY_VAR", "value": "hello"}
    # The daemon's own environment does not leak in.
    assert daemon.probe(probe_fn, "env SUDO_USER")["value"] is None


def test_two_sandboxes_have_different_uids(daemon, probe_fn):
    # Sandboxes never share a uid while both are alive; sequential ones may reuse a slot,
    # so the check is that a sandbox's uid is in the unprivileged range.
    s = daemon.probe(probe_fn, "status")
    assert s["uid"] >= 100000


@pytest.mark.parametrize("op", ["mount", "unshare-user", "unshare-net", "clone-newns", "setns",
                                "ptrace", "bpf", "perf", "keyctl", "userfaultfd", "io_uring",
                                "tiocsti", "chroot", "setuid0"])
def test_refused_syscalls(daemon, probe_fn, op):
    r = daemon.probe(probe_fn, f"try {op}")
    assert r["ok"] is False, r
    assert r.get("signal", 0) == 0, r  # refused with an error, not by killing


@pytest.mark.parametrize("op", ["x32", "i386"])
def test_foreign_abi_syscalls_are_killed(daemon, probe_fn, op):
    r = daemon.probe(probe_fn, f"try {op}")
    assert r["ok"] is False and r.get("signal") == 31, r  # SIGSYS


def test_filesystem_is_read_only_except_tmp(daemon, probe_fn):
    for path in ("/usr/fnbox-x", "/var/task/x", "/fnbox-x", "/etc/fnbox-x", "/dev/fnbox-x"):
        r = daemon.probe(probe_fn, f"try write {path}")
        assert r["ok"] is False and r["errno"] in (13, 30), (path, r)  # EACCES / EROFS
    # (a warm instance keeps its /tmp between calls, as Lambda does: use a fresh name)
    assert daemon.probe(probe_fn, "try write /tmp/write-test")["ok"] is True


def test_host_files_are_not_visible(daemon, probe_fn):
    for path in ("/etc/shadow", "/root", "/home", daemon.state_dir + "/token",
                 daemon.state_dir + "/fnbox.db"):
        r = daemon.probe(probe_fn, f"try read {path}")
        assert r["ok"] is False, (path, r)
    # /sys is empty, /dev has only the safe devices.
    assert daemon.probe(probe_fn, "try ls /sys")["count"] == 0
    dev = set(daemon.probe(probe_fn, "try ls /dev")["names"])
    assert {"null", "zero", "full", "random", "urandom"} <= dev
    assert not dev & {"sda", "vda", "mem", "kmem", "kmsg", "tty", "console", "port"}
    assert daemon.probe(probe_fn, "try mknod /tmp/dev")["ok"] is False


def test_proc_shows_only_the_sandbox(daemon, probe_fn):
    r = daemon.probe(probe_fn, "try ls /proc")
    pids = [n for n in r["names"] if n.isdigit()]
    assert pids == ["1"] or sorted(pids) == ["1", str(max(int(p) for p in pids))], pids
    # Sensitive files are masked (/dev/null bound over them): they read as empty.
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sysrq-trigger"):
        r = daemon.probe(probe_fn, f"try read {path}")
        # (a file this kernel lacks, such as /proc/kcore on some hosts, reads as ENOENT)
        assert (r["ok"] is True and r["bytes"] == 0) or r["errno"] == 2, (path, r)
    # /proc/sys is read-only.
    r = daemon.probe(probe_fn, "try write /proc/sys/kernel/hostname")
    assert r["ok"] is False, r


def test_network_is_loopback_only(daemon, probe_fn):
    net = daemon.probe(probe_fn, "net")["interfaces"]
    assert [i["name"] for i in net] == ["lo"]
    assert net[0]["up"] is True
    # A port listening on the host's loopback cannot be reached from inside.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        r = daemon.probe(probe_fn, f"try connect 127.0.0.1 {port}")
        assert r["ok"] is False, r
        r = daemon.probe(probe_fn, f"try connect 127.0.0.1 {daemon.port}")
        assert r["ok"] is False, r


def test_cannot_signal_host_processes(daemon, probe_fn):
    r = daemon.probe(probe_fn, f"try kill {daemon.proc.pid} 9")
    assert r["ok"] is False
    assert daemon.proc.poll() is None


def test_rlimits(daemon, probe_fn):
    lim = daemon.probe(probe_fn, "limits")
    assert lim["core"] == {"soft": 0, "hard": 0}
    assert lim["nofile"]["hard"] <= 1024


def test_only_expected_fds(daemon, probe_fn):
    fds = daemon.probe(probe_fn, "fds")
    text = str(fds)
    # No fd of the daemon (its database, sockets, the HTTP listener) reaches the function.
    assert "fnbox.db" not in text and "token" not in text
