# SPDX-License-Identifier: Apache-2.0
VALUE = "from lib/deep.py"


def handler(event, context):
    return {"deep": True, "event": event}
