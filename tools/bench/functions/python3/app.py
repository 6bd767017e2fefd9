# SPDX-License-Identifier: Apache-2.0
# fnbox-bench's echo for the python3 runtime (handler "app.handler"), next to echo.so for native.
def handler(event, context):
    return event
