/* SPDX-License-Identifier: Apache-2.0 */
/* echo.so: answers with its payload. The same as examples/echo/echo.c, plus the prototype that
 * the project's -Wmissing-prototypes wants. */
#include "fnbox.h"

fnbox_handler_fn handler;

int handler(const fnbox_request *req, fnbox_response *res)
{
        return fnbox_respond(res, req->payload, req->payload_len);
}
