/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sys/capability.h>

#include "macro.h"
#include "sandbox-internal.h"

/* Capabilities of the sandbox: none, in every set (security-anchors §3.1: a FaaS sandbox running
 * as a non-root uid keeps nothing; CAP_NET_RAW or CAP_MKNOD would only add attack surface).
 *
 * The order matters. The bounding set can only be lowered with CAP_SETPCAP, so it is dropped
 * while the child is still root; then the uid switch clears the permitted and effective sets
 * (no SECBIT_KEEP_CAPS); cap_set_proc() with an empty set clears the inheritable set, which the
 * uid switch leaves alone; and a final check reads every set back from the kernel, so a
 * capability the kernel knows but libcap does not cannot slip through. */

int sandbox_caps_init(SandboxCaps *c, FnError *reterr)
{
        cap_value_t n;

        c->empty = cap_init(); /* all flags clear */
        if (!c->empty)
                return fn_error_set(reterr, -ENOMEM, "caps: cap_init failed");
        /* cap_max_bits() asks the running kernel, so caps newer than libcap's headers count. */
        n = cap_max_bits();
        if (n <= 0 || n > 64) {
                (void)cap_free(c->empty);
                c->empty = NULL;
                return fn_error_set(reterr, -EINVAL, "caps: kernel reports %d capabilities",
                                    (int)n);
        }
        c->max_bits = (unsigned int)n;
        return 0;
}

void sandbox_caps_done(SandboxCaps *c)
{
        if (!c)
                return;
        if (c->empty)
                (void)cap_free(c->empty);
        c->empty = NULL;
}

int sandbox_caps_drop_bounding(const SandboxCaps *c)
{
        for (unsigned int cap = 0; cap < c->max_bits; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                        return negative_errno();
        return RET_NERRNO(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
}

int sandbox_caps_clear(const SandboxCaps *c)
{
        struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};

        /* cap_set_proc() only issues capset(2) on the prepared cap_t: no allocation. */
        if (cap_set_proc(c->empty) < 0)
                return negative_errno();

        /* Verify with the raw syscall: cap_get_proc() would allocate. */
        if (syscall(SYS_capget, &hdr, data) < 0)
                return negative_errno();
        for (size_t i = 0; i < ELEMENTSOF(data); i++)
                if (data[i].effective || data[i].permitted || data[i].inheritable)
                        return -EPERM;
        for (unsigned int cap = 0; cap < c->max_bits; cap++) {
                if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0)
                        return -EPERM;
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) != 0)
                        return -EPERM;
        }
        return 0;
}
