"""Runtimes beyond C: functions written for AWS Lambda run unchanged (DESIGN.md decision 10).

provided: AWS's custom-runtime tutorial (bash + curl) verbatim; python3 and nodejs: Lambda-style
handlers through the shims in rootfs/runtimes. Each runtime: event in and result out, the context
object, errors (502 with Lambda's error JSON as the runtime posted it), init failures, timeout
(504), memory kill (502 OutOfMemory), warm reuse keeping module state, captured output.
"""
import json
import os
import time

import pytest

from conftest import TOP

SAMPLES = os.path.join(TOP, "tests", "functions", "runtimes")


def sample(kind, only=None):
    """The files of tests/functions/runtimes/<kind> as {path: (bytes, mode)}."""
    root = os.path.join(SAMPLES, kind)
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            if only and rel not in only:
                continue
            with open(p, "rb") as f:
                files[rel] = (f.read(), os.stat(p).st_mode & 0o777)
    return files


def error_of(r):
    """(type, message) of a platform error answer {"error": {...}}."""
    err = r.json()["error"]
    return err["type"], err["message"]


def log_of(daemon, r):
    rec = daemon.req("GET", "/v1/invocations/" + r.headers["X-Fnbox-Invocation-Id"])
    assert rec.status_code == 200, rec.text
    return rec.json()["log"]


def invoke_json(daemon, name, event):
    return daemon.invoke(name, json.dumps(event).encode(),
                         headers={"Content-Type": "application/json"})


def wait_warm(daemon, name, event, tries=3):
    """Invokes until an answer comes from a warm instance; None if the daemon keeps none."""
    for _ in range(tries):
        r = invoke_json(daemon, name, event)
        assert r.status_code == 200, r.text
        if r.headers.get("X-Fnbox-Start") == "warm":
            return r
    return None


# ---------------------------------------------------------------- provided (bash tutorial)

@pytest.fixture(scope="module")
def bash_fn(daemon):
    files = sample("bash", only={"bootstrap", "function.sh"})
    assert files["bootstrap"][1] & 0o111 and files["function.sh"][1] & 0o111
    daemon.deploy("bash-runtime", files=files, runtime="provided", handler="function.handler")
    return "bash-runtime"


def test_aws_tutorial_bootstrap_runs_unchanged(daemon, bash_fn):
    r = daemon.invoke(bash_fn, b'{"text":"Hello"}')
    assert r.status_code == 200, r.text
    assert r.text == "Echoing request: '{\"text\":\"Hello\"}'"
    # function.sh echoes the event to stderr: it is the invocation's log.
    assert '{"text":"Hello"}' in log_of(daemon, r)


def test_provided_aliases(daemon):
    files = sample("bash", only={"bootstrap", "function.sh"})
    for rt in ("provided.al2", "provided.al2023"):
        f = daemon.deploy("bash-" + rt.replace(".", "-"), files=files, runtime=rt,
                          handler="function.handler").json()
        assert f["runtime"] == rt
        r = daemon.invoke(f["name"], b"x")
        assert r.status_code == 200 and r.text == "Echoing request: 'x'", r.text


def test_provided_deploy_checks(daemon):
    files = sample("bash", only={"bootstrap", "function.sh"})
    r = daemon.deploy("no-bootstrap", files={"function.sh": files["function.sh"]},
                      runtime="provided", handler="function.handler", expect=400)
    assert "bundle has no executable 'bootstrap' at its root" in r.text
    r = daemon.deploy("not-executable", files={"bootstrap": (files["bootstrap"][0], 0o644)},
                      runtime="provided", handler="function.handler", expect=400)
    assert "bundle has no executable 'bootstrap' at its root" in r.text
    r = daemon.deploy("bad-handler", files=files, runtime="provided", handler="tab\there",
                      expect=400)
    assert "field 'handler' for runtime 'provided'" in r.text


CUSTOM_BOOTSTRAP = b"""#!/bin/bash
set -eu
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  H=$(mktemp)
  EVENT=$(curl -sS -D "$H" "$API/invocation/next")
  ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  case "$EVENT" in
    fail) curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Error-Type: Custom.Failure' \\
            -d '{"errorMessage":"it broke","errorType":"Custom.Failure","stackTrace":["a","b"]}' \\
            "$API/invocation/$ID/error" ;;
    env) env | sort | curl -sS -o /dev/null -X POST --data-binary @- "$API/invocation/$ID/response" ;;
    exit) echo "exiting now" >&2; exit 7 ;;
    sleep) sleep 30 ;;
    *) curl -sS -o /dev/null -X POST -d "got:$EVENT" "$API/invocation/$ID/response" ;;
  esac
done
"""


@pytest.fixture(scope="module")
def custom_fn(daemon):
    daemon.deploy("custom-rt", files={"bootstrap": (CUSTOM_BOOTSTRAP, 0o755)},
                  runtime="provided", handler="my.handler", env={"GREETING": "hi"},
                  memory_mb=128, timeout_ms=2000)
    return "custom-rt"


def test_provided_error_body_passes_through(daemon, custom_fn):
    r = daemon.invoke(custom_fn, b"fail")
    assert r.status_code == 502, r.text
    assert r.headers["X-Fnbox-Function-Error"] == "Custom.Failure"
    # Lambda's error document, as the runtime posted it.
    assert r.json() == {"errorMessage": "it broke", "errorType": "Custom.Failure",
                        "stackTrace": ["a", "b"]}
    assert daemon.invoke(custom_fn, b"ok").text == "got:ok"


def test_provided_environment(daemon, custom_fn):
    r = daemon.invoke(custom_fn, b"env")
    assert r.status_code == 200, r.text
    env = dict(line.split("=", 1) for line in r.text.splitlines() if "=" in line)
    assert env["_HANDLER"] == "my.handler"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == custom_fn
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/" + custom_fn
    assert "/[1]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["TZ"] == ":UTC" and env["HOME"] == "/tmp"
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin:/opt/bin"
    assert env["LANG"] in ("en_US.UTF-8", "C.UTF-8")
    assert env["LD_LIBRARY_PATH"] == "/var/task/lib:/opt/lib"
    assert env["GREETING"] == "hi"


def test_provided_runtime_exit(daemon, custom_fn):
    r = daemon.invoke(custom_fn, b"exit")
    assert r.status_code == 502, r.text
    assert r.headers["X-Fnbox-Function-Error"] == "Runtime.ExitError"
    body = r.json()
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Error: Runtime exited with error: exit status 7")
    assert "exiting now" in log_of(daemon, r)
    # The next call gets a fresh instance.
    assert daemon.invoke(custom_fn, b"again").text == "got:again"


def test_provided_timeout(daemon, custom_fn):
    t0 = time.monotonic()
    r = daemon.invoke(custom_fn, b"sleep")
    assert r.status_code == 504, r.text
    assert error_of(r)[0] == "Timeout"
    assert time.monotonic() - t0 < 4
    assert daemon.invoke(custom_fn, b"after").text == "got:after"


def test_provided_init_exit(daemon):
    daemon.deploy("exits-at-init", files={"bootstrap": (b"#!/bin/sh\necho bye\nexit 3\n", 0o755)},
                  runtime="provided", handler="x")
    r = daemon.invoke("exits-at-init", b"{}")
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert err["type"] == "InitError" and r.headers["X-Fnbox-Function-Error"] == "InitError"
    assert "Runtime exited with error: exit status 3" in err["message"]


# ---------------------------------------------------------------- python3

@pytest.fixture(scope="module")
def py_fn(daemon):
    daemon.deploy("py", files=sample("python"), runtime="python3", handler="app.handler",
                  env={"MY_VAR": "hello"}, memory_mb=128, timeout_ms=3000)
    return "py"


def test_python_event_in_result_out(daemon, py_fn):
    r = invoke_json(daemon, py_fn, {"op": "echo", "list": [1, 2, {"k": "é"}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"op": "echo", "list": [1, 2, {"k": "é"}]}
    r = daemon.invoke(py_fn, b"")  # Lambda hands an empty payload over as {}
    assert r.status_code == 200 and r.json() == {}, r.text
    r = daemon.invoke(py_fn, b"not json")  # documented: reaches the handler as a string
    assert r.status_code == 200 and r.json() == {"not_a_dict": "not json"}, r.text


def test_python_context(daemon, py_fn):
    r = invoke_json(daemon, py_fn, {"op": "context"})
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["aws_request_id"] == r.headers["X-Fnbox-Invocation-Id"]
    assert c["function_name"] == py_fn and c["function_version"] == "1"
    assert c["memory_limit_in_mb"] == "128"
    assert c["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{py_fn}"
    assert c["log_group_name"] == "/aws/lambda/" + py_fn
    assert 1000 < c["remaining_ms"] <= 3000
    assert c["trace_id"].startswith("Root=1-")


def test_python_sibling_modules(daemon, py_fn):
    r = invoke_json(daemon, py_fn, {"op": "helper", "name": "fnbox"})
    assert r.json() == {"greeting": "hello, fnbox", "deep": "from lib/deep.py"}
    r = invoke_json(daemon, py_fn, {"op": "env", "keys": ["MY_VAR", "AWS_EXECUTION_ENV"]})
    assert r.json() == {"MY_VAR": "hello", "AWS_EXECUTION_ENV": "AWS_Lambda_python3"}


def test_python_error(daemon, py_fn):
    r = invoke_json(daemon, py_fn, {"op": "fail", "why": "disk full"})
    assert r.status_code == 502, r.text
    assert r.headers["X-Fnbox-Function-Error"] == "ValueError"
    body = r.json()
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "something went wrong: disk full"
    assert body["requestId"] == r.headers["X-Fnbox-Invocation-Id"]
    assert any('app.py", line' in f and "in fail" in f for f in body["stackTrace"])
    log = log_of(daemon, r)
    assert "[ERROR] ValueError: something went wrong: disk full" in log
    assert "Traceback (most recent call last):" in log


def test_python_output_captured(daemon, py_fn):
    r = invoke_json(daemon, py_fn, {"op": "output", "text": "hello log"})
    assert r.status_code == 200 and r.json() == "printed"
    log = log_of(daemon, r)
    assert "to stdout: hello log" in log and "to stderr: hello log" in log
    assert "[INFO]" in log and "logged at info" in log


def test_python_deploy_checks(daemon):
    r = daemon.deploy("py-missing", files=sample("python"), runtime="python3",
                      handler="main.handler", expect=400)
    assert "the bundle has no module file 'main.py'" in r.text
    r = daemon.deploy("py-bad", files=sample("python"), runtime="python3", handler="app",
                      expect=400)
    assert ("field 'handler' for runtime 'python3' must be \"MODULE.FUNCTION\""
            in error_of(r)[1])


@pytest.mark.parametrize("handler,etype,needle", [
    ("broken.handler", "Runtime.ImportModuleError",
     "Unable to import module 'broken': No module named 'no_such_module_anywhere'"),
    ("app.nope", "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"),
    ("raises_at_import.handler", "RuntimeError", "configuration missing"),
])
def test_python_init_errors(daemon, handler, etype, needle):
    name = "py-init-" + handler.split(".")[0].replace("_", "-")
    daemon.deploy(name, files=sample("python"), runtime="python3", handler=handler)
    r = daemon.invoke(name, b"{}")
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert err["type"] == "InitError" and r.headers["X-Fnbox-Function-Error"] == "InitError"
    assert needle in err["message"]  # the message the runtime posted
    assert err["runtime_error"]["errorType"] == etype  # and its whole error body


def test_python_timeout(daemon):
    daemon.deploy("py-slow", files=sample("python"), runtime="python3", handler="app.handler",
                  timeout_ms=1000)
    t0 = time.monotonic()
    r = invoke_json(daemon, "py-slow", {"op": "sleep", "seconds": 10})
    assert r.status_code == 504, r.text
    assert error_of(r) == ("Timeout", "Task timed out after 1.00 seconds")
    assert time.monotonic() - t0 < 3


def test_python_memory_kill(daemon):
    daemon.deploy("py-hog", files=sample("python"), runtime="python3", handler="app.handler",
                  memory_mb=64)
    r = invoke_json(daemon, "py-hog", {"op": "memhog", "mb": 200})
    assert r.status_code == 502, r.text
    assert r.headers["X-Fnbox-Function-Error"] == "OutOfMemory"
    r = invoke_json(daemon, "py-hog", {"op": "memhog", "mb": 8})
    assert r.status_code == 200 and r.json() == {"allocated_mb": 8}, r.text


def test_python_runtime_exit(daemon, py_fn):
    r = invoke_json(daemon, py_fn, {"op": "exit", "code": 3})
    assert r.status_code == 502, r.text
    assert r.headers["X-Fnbox-Function-Error"] == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in r.text


def test_python_init_timeout(daemon):
    daemon.deploy("py-slow-init", files=sample("python"), runtime="python3",
                  handler="slow_init.handler", env={"SLOW_INIT_SECONDS": "30"})
    t0 = time.monotonic()
    r = daemon.invoke("py-slow-init", b"{}")
    assert r.status_code in (502, 504), r.text
    assert time.monotonic() - t0 < 15


def test_python_warm_reuse_keeps_module_state(daemon, py_fn):
    r1 = wait_warm(daemon, py_fn, {"op": "counter"})
    if r1 is None:
        pytest.skip("the daemon does not keep warm instances (X-Fnbox-Start never 'warm')")
    r2 = invoke_json(daemon, py_fn, {"op": "counter"})
    if r2.headers.get("X-Fnbox-Start") != "warm":
        pytest.skip("second call was not warm")
    a, b = r1.json(), r2.json()
    assert b["started"] == a["started"]
    assert b["count"] == a["count"] + 1


# ---------------------------------------------------------------- nodejs

@pytest.fixture(scope="module")
def node_fn(daemon):
    daemon.deploy("node", files=sample("node"), runtime="nodejs", handler="index.handler",
                  env={"MY_VAR": "hello"}, memory_mb=128, timeout_ms=3000)
    return "node"


def test_node_event_in_result_out(daemon, node_fn):
    r = invoke_json(daemon, node_fn, {"op": "echo", "n": [1, 2]})
    assert r.status_code == 200 and r.json() == {"op": "echo", "n": [1, 2]}, r.text
    r = invoke_json(daemon, node_fn, {"op": "undefined"})
    assert r.status_code == 200 and r.text == "null"


def test_node_context(daemon, node_fn):
    r = invoke_json(daemon, node_fn, {"op": "context"})
    c = r.json()
    assert c["awsRequestId"] == r.headers["X-Fnbox-Invocation-Id"]
    assert c["functionName"] == node_fn and c["functionVersion"] == "1"
    assert c["memoryLimitInMB"] == "128"
    assert c["invokedFunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{node_fn}"
    assert c["logGroupName"] == "/aws/lambda/" + node_fn
    assert c["callbackWaitsForEmptyEventLoop"] is True
    assert 1000 < c["remainingMs"] <= 3000


def test_node_error(daemon, node_fn):
    r = invoke_json(daemon, node_fn, {"op": "fail", "why": "x"})
    assert r.status_code == 502, r.text
    assert r.headers["X-Fnbox-Function-Error"] == "Error"
    body = r.json()
    assert body["errorType"] == "Error" and body["errorMessage"] == "something went wrong: x"
    assert body["trace"][0] == "Error: something went wrong: x"
    assert "Invoke Error" in log_of(daemon, r)


def test_node_output_captured(daemon, node_fn):
    r = invoke_json(daemon, node_fn, {"op": "output", "text": "yo"})
    log = log_of(daemon, r)
    rid = r.headers["X-Fnbox-Invocation-Id"]
    assert f"\t{rid}\tINFO\tto stdout: yo" in log
    assert f"\t{rid}\tERROR\tto stderr: yo" in log


@pytest.mark.parametrize("handler,event,want", [
    ("index.callback", {"x": 1}, {"style": "callback", "event": {"x": 1}, "timerRan": True}),
    ("index.succeed", {"y": 2}, {"style": "context.succeed", "event": {"y": 2}}),
    ("index.nested.fn", {"z": 3}, {"nested": True, "event": {"z": 3}}),
    ("legacy.handler", {"q": 1}, {"module": "cjs", "event": {"q": 1}}),
])
def test_node_handler_styles(daemon, handler, event, want):
    name = "node-" + handler.replace(".", "-").lower()
    daemon.deploy(name, files=sample("node"), runtime="nodejs", handler=handler)
    r = invoke_json(daemon, name, event)
    assert r.status_code == 200, r.text
    assert r.json() == want


def test_node_esm(daemon):
    daemon.deploy("node-esm", files=sample("node"), runtime="nodejs", handler="esm.handler")
    r = invoke_json(daemon, "node-esm", {"name": "m"})
    assert r.status_code == 200, r.text
    assert r.json()["module"] == "esm" and r.json()["greeting"] == "hello from esm, m"


def test_node_deploy_checks(daemon):
    r = daemon.deploy("node-missing", files=sample("node"), runtime="nodejs",
                      handler="app.handler", expect=400)
    assert "the bundle has no 'app.js', 'app.mjs' or 'app.cjs'" in r.text


def test_node_init_error(daemon):
    daemon.deploy("node-broken", files=sample("node"), runtime="nodejs", handler="broken.handler")
    r = daemon.invoke("node-broken", b"{}")
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert err["type"] == "InitError" and r.headers["X-Fnbox-Function-Error"] == "InitError"
    assert "Cannot find module 'no-such-module-anywhere'" in err["message"]
    assert err["runtime_error"]["errorType"] == "Runtime.ImportModuleError"


def test_node_timeout(daemon):
    daemon.deploy("node-slow", files=sample("node"), runtime="nodejs", handler="index.handler",
                  timeout_ms=1000)
    r = invoke_json(daemon, "node-slow", {"op": "sleep", "seconds": 10})
    assert r.status_code == 504, r.text
    assert error_of(r)[0] == "Timeout"


def test_node_memory_kill(daemon):
    daemon.deploy("node-hog", files=sample("node"), runtime="nodejs", handler="index.handler",
                  memory_mb=64)
    r = invoke_json(daemon, "node-hog", {"op": "memhog", "mb": 200})
    assert r.status_code == 502, r.text
    assert r.headers["X-Fnbox-Function-Error"] == "OutOfMemory"


def test_node_warm_reuse_keeps_module_state(daemon, node_fn):
    r1 = wait_warm(daemon, node_fn, {"op": "counter"})
    if r1 is None:
        pytest.skip("the daemon does not keep warm instances (X-Fnbox-Start never 'warm')")
    r2 = invoke_json(daemon, node_fn, {"op": "counter"})
    if r2.headers.get("X-Fnbox-Start") != "warm":
        pytest.skip("second call was not warm")
    assert r2.json()["count"] == r1.json()["count"] + 1
    assert r2.json()["started"] == r1.json()["started"]


def test_provided_init_error_posted_by_the_runtime(daemon):
    # A bootstrap that reports its own init failure through the Runtime API, as AWS documents.
    bootstrap = (b"#!/bin/sh\nset -euo pipefail\n"
                 b"curl -sS -X POST \"http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/init/error\""
                 b" -d '{\"errorMessage\":\"no config\",\"errorType\":\"Custom.Config\"}'\n"
                 b"sleep 5\n")
    daemon.deploy("posts-init-error", files={"bootstrap": (bootstrap, 0o755)},
                  runtime="provided", handler="x")
    r = daemon.invoke("posts-init-error", b"{}")
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert err["type"] == "InitError" and err["message"] == "no config"
    assert err["runtime_error"] == {"errorMessage": "no config", "errorType": "Custom.Config"}
