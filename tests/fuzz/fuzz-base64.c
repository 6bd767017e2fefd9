/* SPDX-License-Identifier: Apache-2.0 */
/* base64_decode() sees the "code" field of every deploy body before anything else looks at the
 * bundle. On arbitrary bytes: no crash or over-read, a size within the 3/4 bound the caller's
 * limits assume, and for whatever it accepts, decode(encode(x)) == x with the canonical length
 * from encode. */
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ void *out = NULL, *again = NULL;
        _cleanup_free_ char *enc = NULL;
        size_t n = 0, n2 = 0;
        int r;

        r = base64_decode((const char *)data, size, &out, &n);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
                FUZZ_CHECK(!out);
                return 0;
        }
        FUZZ_CHECK(out);
        FUZZ_CHECK(n <= size / 4 * 3);

        enc = base64_encode(out, n);
        FUZZ_CHECK(enc);
        FUZZ_CHECK(strlen(enc) == (n + 2) / 3 * 4);
        FUZZ_CHECK(strlen(enc) <= size);

        FUZZ_CHECK(base64_decode(enc, strlen(enc), &again, &n2) >= 0);
        FUZZ_CHECK(n2 == n);
        FUZZ_CHECK(n == 0 || memcmp(out, again, n) == 0);
        return 0;
}
