# SPDX-License-Identifier: Apache-2.0
"""Test function for fnbox's python3 runtime, written as for AWS Lambda's Python runtime.

Deploy with handler "app.handler" and send {"op": ..., ...}; the other handlers (app.echo,
app.counter, ...) can be deployed on their own too."""
import json
import logging
import os
import socket
import sys
import time

import helper  # a sibling module in /var/task
from lib import deep  # a package below /var/task

logger = logging.getLogger()
logger.setLevel(logging.INFO)

COUNT = 0  # module state: survives between invocations of a warm instance
STARTED = time.time()


class CustomError(Exception):
    pass


def echo(event, context):
    return event


def counter(event, context):
    global COUNT
    COUNT += 1
    return {"count": COUNT, "pid": os.getpid(), "started": STARTED}


def context_fields(event, context):
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
    }


def env(event, context):
    return {k: os.environ.get(k) for k in event.get("keys", [])} if isinstance(event, dict) \
        else dict(os.environ)


def fail(event, context):
    raise ValueError("something went wrong: " + str(event.get("why", "no reason")))


def fail_custom(event, context):
    raise CustomError("custom failure")


def output(event, context):
    print("to stdout:", event.get("text", ""))
    print("to stderr:", event.get("text", ""), file=sys.stderr)
    logger.info("logged at info")
    return "printed"


def sleep(event, context):
    time.sleep(float(event.get("seconds", 1)))
    return {"remaining_ms": context.get_remaining_time_in_millis()}


def memhog(event, context):
    mb = int(event.get("mb", 16))
    blocks = [bytearray(b"x" * (1024 * 1024)) for _ in range(mb)]
    return {"allocated_mb": len(blocks)}


def use_helper(event, context):
    return {"greeting": helper.greet(event.get("name", "world")), "deep": deep.VALUE}


def not_serializable(event, context):
    return {"obj": object()}


def returns_bytes(event, context):
    return b"\x00raw bytes\xff"


def exit_now(event, context):
    sys.stdout.flush()
    os._exit(int(event.get("code", 3)))


def cwd(event, context):
    return {"cwd": os.getcwd(), "uid": os.getuid(), "sys_path0": sys.path[0],
            "argv0": sys.argv[0]}


def raw_api(event, context):
    """Talks to the Runtime API directly, as hostile or buggy code would; returns the status
    lines it got."""
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    out = []
    for req in event.get("requests", []):
        s = socket.create_connection((host, int(port)), timeout=2)
        try:
            s.sendall(req.encode("latin-1"))
            if event.get("half_close"):
                s.shutdown(socket.SHUT_WR)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                data += b"<timeout>"
            out.append(data.split(b"\r\n", 1)[0].decode("latin-1") + " | " +
                       data.split(b"\r\n\r\n", 1)[-1][:200].decode("latin-1"))
        finally:
            s.close()
    return out


def hold_connections(event, context):
    """Opens n connections (partial requests) and keeps them for the process's life."""
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    global HELD
    HELD = []
    for _ in range(int(event.get("n", 20))):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"POST /2018-06-01/runtime/invocation/x/response HTTP/1.1\r\nContent-Len")
        HELD.append(s)
    return len(HELD)


OPS = {
    "echo": echo, "counter": counter, "context": context_fields, "env": env, "fail": fail,
    "fail_custom": fail_custom, "output": output, "sleep": sleep, "memhog": memhog,
    "helper": use_helper, "not_serializable": not_serializable, "bytes": returns_bytes,
    "exit": exit_now, "cwd": cwd, "raw_api": raw_api, "hold": hold_connections,
}


def handler(event, context):
    if not isinstance(event, dict):
        return {"not_a_dict": event}
    return OPS[event.get("op", "echo")](event, context)
