# SPDX-License-Identifier: Apache-2.0
# Raises while being imported: an init error with the exception's own type.
raise RuntimeError("configuration missing")


def handler(event, context):
    return "unreachable"
