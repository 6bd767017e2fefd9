/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "sandbox-internal.h"

/* Networking of a sandbox: a new network namespace with only a loopback interface. Nothing in
 * it can reach the host or another sandbox; the agent's Runtime API listens on the sandbox's own
 * 127.0.0.1. (Egress through a veth pair, if it ever comes, is set up from the daemon with
 * libnl, which belongs in this file too.) */

int sandbox_net_loopback_up(void)
{
        /* Runs in the child between clone and exec, where nothing may allocate. libnl builds
         * every netlink message in malloc'd buffers; the SIOCSIFFLAGS ioctl on a throwaway
         * AF_INET socket flips IFF_UP with two syscalls and no memory. */
        struct ifreq ifr;
        _cleanup_close_ int fd = -EBADF;

        memset(&ifr, 0, sizeof(ifr));
        memcpy(ifr.ifr_name, "lo", sizeof("lo"));
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return negative_errno();
        if (ifr.ifr_flags & IFF_UP)
                return 0;
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                return negative_errno();
        return 0;
}
