"""A restart keeps every function, its code and the admin token."""
import os
import stat

from conftest import function_bytes


def test_token_file_is_private(daemon):
    st = os.stat(os.path.join(daemon.state_dir, "token"))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == 0
    assert len(daemon.token) == 64


def test_functions_survive_a_restart(daemon):
    a = daemon.deploy("persist-a", {"echo.so": function_bytes("echo.so")}, handler="echo.so",
                      memory_mb=192, env={"K": "V"}, keep_alive_ms=0).json()
    b = daemon.deploy("persist-b", {"echo.so": function_bytes("echo.so")}, handler="echo.so",
                      timeout_ms=999).json()
    token = daemon.token
    daemon.restart()
    assert daemon.token == token
    assert daemon.req("GET", "/v1/functions/persist-a").json() == a
    assert daemon.req("GET", "/v1/functions/persist-b").json() == b
    r = daemon.invoke("persist-a", b"after restart")
    assert r.status_code == 200 and r.content == b"after restart"
    assert daemon.wait_clean(), (daemon.sandbox_cgroups(), daemon.sandbox_mounts())
