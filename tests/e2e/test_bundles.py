"""Hostile bundles are refused with 400 and leave nothing behind (DESIGN.md decision 8)."""
import base64
import io
import os
import tarfile
import zipfile

import pytest

from conftest import function_bytes, zip_bytes


def tar_gz(members):
    """members: list of (TarInfo, bytes or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tinfo(name, type_=tarfile.REGTYPE, size=0, mode=0o644, linkname=""):
    i = tarfile.TarInfo(name)
    i.type = type_
    i.size = size
    i.mode = mode
    i.linkname = linkname
    return i


def echo_member():
    data = function_bytes("echo.so")
    return (tinfo("echo.so", size=len(data), mode=0o755), data)


def zip_symlink(name, target):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("echo.so", function_bytes("echo.so"))
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o120777) << 16
        z.writestr(info, target)
    return buf.getvalue()


def zip_bomb():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("echo.so", function_bytes("echo.so"))
        with z.open("zeros.bin", "w", force_zip64=True) as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):  # 300 MiB unpacked, ~300 KiB packed: over the 256 MiB cap
                f.write(chunk)
    return buf.getvalue()


HOSTILE = {
    "zip-slip": lambda: zip_bytes({"echo.so": function_bytes("echo.so"), "../evil": b"x"}),
    "zip-nested-slip": lambda: zip_bytes({"echo.so": function_bytes("echo.so"),
                                          "a/../../evil": b"x"}),
    "zip-absolute": lambda: zip_bytes({"echo.so": function_bytes("echo.so"),
                                       "/tmp/fnbox-evil": b"x"}),
    "zip-symlink-out-abs": lambda: zip_symlink("link", "/etc/passwd"),
    "zip-symlink-out-rel": lambda: zip_symlink("link", "../../../../etc"),
    "tar-slip": lambda: tar_gz([echo_member(), (tinfo("../evil", size=1), b"x")]),
    "tar-absolute": lambda: tar_gz([echo_member(), (tinfo("/tmp/fnbox-evil", size=1), b"x")]),
    "tar-symlink-out": lambda: tar_gz([echo_member(),
                                       (tinfo("etc", tarfile.SYMTYPE, linkname="/etc"), None)]),
    "tar-symlink-then-write": lambda: tar_gz([
        echo_member(), (tinfo("d", tarfile.SYMTYPE, linkname="/tmp"), None),
        (tinfo("d/fnbox-evil", size=1), b"x")]),
    "tar-hardlink-out": lambda: tar_gz([echo_member(),
                                        (tinfo("h", tarfile.LNKTYPE, linkname="/etc/passwd"),
                                         None)]),
    "tar-char-device": lambda: tar_gz([echo_member(), (tinfo("null", tarfile.CHRTYPE), None)]),
    "tar-fifo": lambda: tar_gz([echo_member(), (tinfo("fifo", tarfile.FIFOTYPE), None)]),
    "tar-setuid": lambda: tar_gz([echo_member(), (tinfo("suid", size=1, mode=0o4755), b"x")]),
    "zip-setuid": lambda: zip_bytes({"echo.so": function_bytes("echo.so"),
                                     "suid": (b"x", 0o4755)}),
    "zip-bomb": zip_bomb,
}


def code_store(daemon):
    d = os.path.join(daemon.state_dir, "code")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_bundle_rejected_and_nothing_left(daemon, kind):
    before = code_store(daemon)
    body = {"runtime": "native", "handler": "echo.so",
            "code": base64.b64encode(HOSTILE[kind]()).decode()}
    r = daemon.req("PUT", f"/v1/functions/hostile-{kind}", json=body, timeout=120)
    assert r.status_code == 400, (kind, r.status_code, r.text)
    assert r.json()["error"]["type"] == "BadRequest"
    assert r.json()["error"]["message"]
    assert daemon.req("GET", f"/v1/functions/hostile-{kind}").status_code == 404
    assert code_store(daemon) == before
    assert not os.path.exists("/tmp/fnbox-evil")
    assert not os.path.exists(os.path.join(daemon.state_dir, "evil"))
    assert not os.path.exists(os.path.join(daemon.state_dir, "code", "evil"))


def test_failed_update_keeps_the_old_version(daemon):
    good = daemon.deploy("keeper", {"echo.so": function_bytes("echo.so")}, handler="echo.so",
                         expect=201).json()
    body = {"runtime": "native", "handler": "echo.so",
            "code": base64.b64encode(HOSTILE["zip-slip"]()).decode()}
    r = daemon.req("PUT", "/v1/functions/keeper", json=body)
    assert r.status_code == 400
    assert daemon.req("GET", "/v1/functions/keeper").json() == good
    assert daemon.invoke("keeper", b"ok").content == b"ok"


def test_tar_gz_bundle_with_inside_symlink_works(daemon):
    data = function_bytes("echo.so")
    tgz = tar_gz([(tinfo("lib/real.so", size=len(data), mode=0o755), data),
                  (tinfo("echo.so", tarfile.SYMTYPE, linkname="lib/real.so"), None)])
    body = {"runtime": "native", "handler": "lib/real.so",
            "code": base64.b64encode(tgz).decode()}
    r = daemon.req("PUT", "/v1/functions/tgz", json=body)
    assert r.status_code == 201, r.text
    assert daemon.invoke("tgz", b"from tar").content == b"from tar"
