# SPDX-License-Identifier: Apache-2.0
# Fails at import: deployed as "broken.handler" it must give Runtime.ImportModuleError.
import no_such_module_anywhere  # noqa: F401


def handler(event, context):
    return "unreachable"
