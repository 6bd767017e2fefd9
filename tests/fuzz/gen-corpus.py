#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpora of fuzz-bundle, fuzz-api-json and fuzz-base64 (corpus/wire/ comes
from gen-wire-corpus.c). Deterministic: fixed timestamps, so running it again changes no byte.

    /usr/bin/python3 tests/fuzz/gen-corpus.py tests/fuzz/corpus

Files it does not write (crash-*, minimized findings) are left alone."""

import base64
import gzip
import io
import json
import os
import sys
import tarfile
import zipfile

MTIME = 1700000000
ZIP_DATE = (2023, 11, 14, 22, 13, 20)
ELF_STUB = b"\x7fELF\x02\x01\x01" + b"\0" * 9  # a handler.so need not be real to be extracted


def targz(members, compress=True):
    """members: list of (TarInfo-modifier-kwargs, data or None)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
        for kw, data in members:
            ti = tarfile.TarInfo(kw.pop("name"))
            ti.mtime = MTIME
            ti.uname = ti.gname = ""
            ti.mode = 0o644
            for k, v in kw.items():
                setattr(ti, k, v)
            if data is not None:
                ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    if not compress:
        return raw.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as g:
        g.write(raw.getvalue())
    return out.getvalue()


def zipped(members):
    """members: list of (name, data, unix_mode)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in members:
            zi = zipfile.ZipInfo(name, ZIP_DATE)
            zi.create_system = 3  # unix, so external_attr carries the mode
            zi.external_attr = mode << 16
            zi.compress_type = zipfile.ZIP_DEFLATED if data else zipfile.ZIP_STORED
            z.writestr(zi, data)
    return out.getvalue()


REG, DIR, SYM, LNK, CHR, FIFO = (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                                 tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE)


def bundles():
    tiny_zip = zipped([("handler.so", ELF_STUB, 0o100755)])
    b = {
        "ok-tiny.zip": tiny_zip,
        "ok-tree.zip": zipped([
            ("lib/", b"", 0o040755),
            ("lib/echo.so", ELF_STUB, 0o100755),
            ("data/config.json", b'{"k":1}\n', 0o100644),
            ("current", b"lib", 0o120777),  # a symlink inside the bundle
        ]),
        "ok-tree.tar.gz": targz([
            ({"name": "./", "type": DIR, "mode": 0o755}, None),
            ({"name": "./lib/", "type": DIR, "mode": 0o755}, None),
            ({"name": "./lib/echo.so", "mode": 0o755}, ELF_STUB),
            ({"name": "./README", "mode": 0o600}, b"hello\n"),
            ({"name": "./lib/link.so", "type": SYM, "linkname": "echo.so"}, None),
            ({"name": "./lib/up", "type": SYM, "linkname": "../README"}, None),
        ]),
        "ok-plain.tar": targz([({"name": "handler.so", "mode": 0o755}, ELF_STUB)], False),
        "bad-slip.zip": zipped([("../evil.so", ELF_STUB, 0o100644)]),
        "bad-slip-deep.tar.gz": targz([({"name": "a/../../../evil"}, b"x")]),
        "bad-absolute.tar": targz([({"name": "/tmp/fnbox-fuzz-evil"}, b"x")], False),
        "bad-symlink-escape.tar.gz": targz([
            ({"name": "out", "type": SYM, "linkname": "../../.."}, None),
            ({"name": "out/evil"}, b"x"),
        ]),
        "bad-symlink-absolute.tar.gz": targz([
            ({"name": "etc", "type": SYM, "linkname": "/etc"}, None),
        ]),
        "bad-symlink-dotdot-after-name.zip": zipped([
            ("d/", b"", 0o040755),
            ("d/s", b"../x/../..", 0o120777),
        ]),
        "bad-device.tar": targz([
            ({"name": "null", "type": CHR, "devmajor": 1, "devminor": 3}, None),
        ], False),
        "bad-fifo.tar.gz": targz([({"name": "p", "type": FIFO}, None)]),
        "bad-hardlink.tar.gz": targz([
            ({"name": "a"}, b"x"),
            ({"name": "b", "type": LNK, "linkname": "a"}, None),
        ]),
        "bad-setuid.tar.gz": targz([({"name": "su", "mode": 0o4755}, b"x")]),
        "bad-duplicate.tar.gz": targz([({"name": "a"}, b"1"), ({"name": "a"}, b"2")]),
        "bad-file-then-dir.tar.gz": targz([({"name": "a"}, b"1"), ({"name": "a/b"}, b"2")]),
        # 8 MiB of zeros: twice the fuzzer's 4 MiB cap, a few KiB compressed.
        "bad-bomb.tar.gz": targz([({"name": "zeros"}, bytes(8 << 20))]),
        "bad-too-many-entries.tar.gz": targz([({"name": "f%03d" % i}, b"") for i in range(300)]),
        "bad-control-chars.tar.gz": targz([({"name": "a\nb"}, b"x")]),
        "bad-too-deep.tar.gz": targz([({"name": "/".join(["d"] * 33)}, b"x")]),
        "bad-long-path.tar.gz": targz([({"name": "n" * 1100}, b"x")]),
        "bad-dot-component.tar.gz": targz([({"name": "a/./b"}, b"x")]),
        "bad-through-symlink.tar.gz": targz([
            ({"name": "d", "type": DIR, "mode": 0o755}, None),
            ({"name": "l", "type": SYM, "linkname": "d"}, None),
            ({"name": "l/x"}, b"x"),
        ]),
        "bad-truncated.zip": tiny_zip[:45],  # cut inside the file's data
        "bad-not-an-archive": b"#!/bin/sh\necho hi\n",
    }
    return b


def deploy(**kw):
    return json.dumps(kw, separators=(",", ":")).encode()


def api_bodies(tiny_zip):
    code = base64.b64encode(tiny_zip).decode()
    return {
        "ok-minimal.json": deploy(runtime="native", handler="handler.so", code=code),
        "ok-full.json": deploy(runtime="native", handler="lib/echo.so:handle", memory_mb=256,
                               timeout_ms=10000, env={"GREETING": "hi", "_X1": ""},
                               code=code),
        "ok-pretty.json": json.dumps({"code": code, "handler": "handler.so",
                                      "runtime": "native", "env": {}}, indent=2).encode(),
        "bad-unknown-field.json": deploy(runtime="native", handler="h.so", code=code, x=1),
        "bad-duplicate-key.json": b'{"runtime":"native","runtime":"native","handler":"h.so",'
                                  b'"code":"' + code.encode() + b'"}',
        "bad-handler-dotdot.json": deploy(runtime="native", handler="../h.so", code=code),
        "bad-handler-absolute.json": deploy(runtime="native", handler="/h.so", code=code),
        "bad-handler-symbol.json": deploy(runtime="native", handler="h.so:1x", code=code),
        "bad-env-reserved.json": deploy(runtime="native", handler="h.so", code=code,
                                        env={"FNBOX_TOKEN": "x"}),
        "bad-env-key.json": deploy(runtime="native", handler="h.so", code=code,
                                   env={"A-B": "x"}),
        "bad-env-nul.json": b'{"runtime":"native","handler":"h.so","env":{"A":"x\\u0000y"},'
                            b'"code":"' + code.encode() + b'"}',
        "bad-memory-string.json": deploy(runtime="native", handler="h.so", code=code,
                                         memory_mb="128"),
        "bad-memory-real.json": deploy(runtime="native", handler="h.so", code=code,
                                       memory_mb=128.0),
        "bad-timeout-range.json": deploy(runtime="native", handler="h.so", code=code,
                                         timeout_ms=2**63 - 1),
        "bad-runtime.json": deploy(runtime="python3.12", handler="h.so", code=code),
        "bad-code-base64.json": deploy(runtime="native", handler="h.so", code="UEs=DBAA"),
        "bad-code-empty.json": deploy(runtime="native", handler="h.so", code=""),
        "bad-missing-code.json": deploy(runtime="native", handler="h.so"),
        "bad-top-array.json": b"[]",
        "bad-truncated.json": deploy(runtime="native", handler="h.so", code=code)[:40],
        "bad-deep-nesting.json": b'{"env":' + b"[" * 2000 + b"]" * 2000 + b"}",
        "bad-empty": b"",
    }


def base64_inputs():
    return {
        "empty": b"",
        "one": b"QQ==",
        "two": b"QUI=",
        "three": b"QUJD",
        "crlf": b"QUJD\r\nREVG\r\n",
        "all-alphabet": base64.b64encode(bytes(range(256))),
        "bad-char": b"QU*D",
        "bad-pad-three": b"Q===",
        "bad-data-after-pad": b"QQ==QUJD",
        "bad-short": b"QUJ",
        "bad-space": b"QUJD REVG",
        "noncanonical-bits": b"QR==",
    }


def write_dir(root, name, files):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    for fname, data in files.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen-corpus.py CORPUS_DIR")
    root = sys.argv[1]
    b = bundles()
    write_dir(root, "bundle", b)
    write_dir(root, "api-json", api_bodies(b["ok-tiny.zip"]))
    write_dir(root, "base64", base64_inputs())


if __name__ == "__main__":
    main()
