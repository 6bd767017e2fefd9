/* SPDX-License-Identifier: Apache-2.0 */
#include "error.h"

#include <stdarg.h>

int fn_error_set(FnError *reterr, int code, const char *fmt, ...)
{
        va_list ap;

        if (code > 0)
                code = -code;
        if (code == 0)
                code = -EINVAL;
        if (!reterr)
                return code;
        reterr->code = code;
        va_start(ap, fmt);
        (void)vsnprintf(reterr->msg, sizeof(reterr->msg), fmt, ap);
        va_end(ap);
        return code;
}
