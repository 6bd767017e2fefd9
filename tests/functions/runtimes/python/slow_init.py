# SPDX-License-Identifier: Apache-2.0
# Sleeps at import for SLOW_INIT_SECONDS (default 30): longer than the 10 s init limit.
import os
import time

time.sleep(float(os.environ.get("SLOW_INIT_SECONDS", "30")))


def handler(event, context):
    return "initialised"
