/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "sandbox-internal.h"

/* The sandbox's file system (DESIGN.md decisions 2 and 5, security-anchors §2.1, §2.5, §3.1).
 *
 * The new root is a small tmpfs that the child mounts on <run_dir>/.root inside its own mount
 * namespace (every sandbox uses that one directory: each mounts there in its own namespace). The
 * tmpfs holds only mount points, a few symlinks and a minimal /etc that we write ourselves;
 * everything else comes in as bind mounts that are read-only, nosuid and nodev:
 *
 *   /usr            host /usr (Debian 12 is merged-/usr: /bin, /lib, /lib64... are symlinks)
 *   /etc/...        passwd, group, hosts, nsswitch.conf, resolv.conf (written here); host
 *                   ld.so.cache, ssl/certs and alternatives (bound, if the host has them)
 *   /var/task       the function's code, or for a stem cell the cell's host directory
 *   /tmp            tmpfs limited in bytes and inodes (rw, nosuid, nodev)
 *   /proc           fresh procfs of the sandbox's pid namespace, sensitive paths masked
 *   /dev            a directory of the root tmpfs (so read-only with it) holding null, zero,
 *                   full, random, urandom (binds of the host's nodes), the fd symlinks and a
 *                   size-limited tmpfs /dev/shm
 *   /sys            an empty directory
 *
 * Each file system instance costs a superblock (20-30 us to make), so there are four: the
 * root, /tmp, /proc and /dev/shm; /dev and the masks over /proc directories are binds.
 *
 * Propagation. The child first makes its whole tree MS_SLAVE (receive, never send), so nothing
 * it mounts can reach the host or another namespace. Once the root is built, the new root is
 * made MS_PRIVATE recursively, so no host mount event reaches the sandbox either: a bind mount
 * keeps its source's peer group or master (a bind of a slave copy of host /usr would receive
 * whatever the host mounts under /usr). The one exception is a stem cell's /var/task, bound
 * after that step from the slave copy of the cell's shared host directory and left a slave:
 * the daemon's later bind of the code onto the cell propagates into it, and only into it.
 *
 * Every destination is inside the fresh tmpfs (or the fresh procfs), which nothing but this
 * child can see or modify while it is being built, so no destination can be swapped for a
 * symlink under us (CVE-2021-30465 class). Paths are relative to the new root: the child
 * chdir()s into it right after mounting it, so no path has to be formatted in the child.
 *
 * All functions below except sandbox_mount_layout_probe() run in the child between clone and
 * exec: no allocation, no logging. */

#define ROOT_TMPFS_OPTS "size=1m,nr_inodes=512,mode=0755"

static const char *const root_link_names[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};

static const char *const root_dirs[] = {"usr", "etc",  "var", "var/task",
                                        "tmp", "proc", "dev", "sys"};

/* Docker's masked paths (moby oci/defaults.go) plus sysrq-trigger and interrupts, as newer
 * engines do. Paths the kernel does not have are skipped. */
static const char *const proc_masked_files[] = {
    "proc/kcore",       "proc/keys",        "proc/latency_stats", "proc/timer_list",
    "proc/timer_stats", "proc/sched_debug", "proc/sysrq-trigger", "proc/interrupts",
};
static const char *const proc_masked_dirs[] = {"proc/acpi", "proc/scsi", "proc/asound"};
static const char *const proc_readonly[] = {"proc/sys", "proc/bus", "proc/fs", "proc/irq"};

static const struct {
        const char *src;
        const char *dst;
} dev_nodes[] = {
    {"/dev/null", "dev/null"},     {"/dev/zero", "dev/zero"},       {"/dev/full", "dev/full"},
    {"/dev/random", "dev/random"}, {"/dev/urandom", "dev/urandom"},
};

static const struct {
        const char *name;
        const char *target;
} dev_links[] = {
    {"dev/fd", "/proc/self/fd"},
    {"dev/stdin", "/proc/self/fd/0"},
    {"dev/stdout", "/proc/self/fd/1"},
    {"dev/stderr", "/proc/self/fd/2"},
};

/* ---- parent side, once per host ---- */

static bool is_dir(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_regular(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int probe_link(SandboxRootLayout *l, const char *name, FnError *reterr)
{
        char path[32], target[sizeof(l->links[0].target)];
        const char *rel;
        ssize_t n;

        (void)snprintf(path, sizeof(path), "/%s", name);
        n = readlink(path, target, sizeof(target) - 1);
        if (n < 0) {
                if (errno == ENOENT)
                        return 0;
                if (errno == EINVAL)
                        return fn_error_set(reterr, -EOPNOTSUPP,
                                            "host root is not merged-/usr: %s is not a symlink",
                                            path);
                return fn_error_set(reterr, negative_errno(), "cannot read link %s", path);
        }
        target[n] = '\0';
        rel = target[0] == '/' ? target + 1 : target;
        if (strncmp(rel, "usr/", 4) != 0 || strstr(rel, ".."))
                return fn_error_set(reterr, -EOPNOTSUPP, "host %s points to %s, not into /usr",
                                    path, target);
        if (l->n_links >= ELEMENTSOF(l->links))
                return fn_error_set(reterr, -E2BIG, "too many top-level links");
        (void)snprintf(l->links[l->n_links].name, sizeof(l->links[0].name), "%s", name);
        (void)snprintf(l->links[l->n_links].target, sizeof(l->links[0].target), "%s", rel);
        l->n_links++;
        return 0;
}

int sandbox_mount_layout_probe(SandboxRootLayout *ret, FnError *reterr)
{
        SandboxRootLayout l = {};
        bool have_bin = false, have_lib = false;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(root_link_names); i++) {
                r = probe_link(&l, root_link_names[i], reterr);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < l.n_links; i++) {
                have_bin = have_bin || strcmp(l.links[i].name, "bin") == 0;
                have_lib = have_lib || strcmp(l.links[i].name, "lib") == 0;
        }
        if (!have_bin || !have_lib)
                return fn_error_set(reterr, -EOPNOTSUPP,
                                    "host root is not merged-/usr (no /bin or /lib link)");
        if (!is_dir("/usr"))
                return fn_error_set(reterr, -EOPNOTSUPP, "host has no /usr");
        l.has_ld_cache = is_regular("/etc/ld.so.cache");
        l.has_ssl_certs = is_dir("/etc/ssl/certs");
        l.has_alternatives = is_dir("/etc/alternatives");
        log_debug("sandbox root: %zu top-level links, ld.so.cache %d, ssl/certs %d, "
                  "alternatives %d",
                  l.n_links, l.has_ld_cache, l.has_ssl_certs, l.has_alternatives);
        *ret = l;
        return 0;
}

/* ---- child side ---- */

/* A read-only, nosuid, nodev bind of src at dst. Not MS_REC: submounts of the host directory
 * stay out of the sandbox, and the remount (which applies to one mount only) then covers the
 * whole bind. A bind mount takes its flags from the source mount, so the remount is what makes
 * it read-only. */
static int bind_ro(const char *src, const char *dst, unsigned long extra)
{
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                return negative_errno();
        return RET_NERRNO(mount(NULL, dst, NULL,
                                MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra,
                                NULL));
}

static int create_file(const char *name, const char *data, size_t len, mode_t mode)
{
        _cleanup_close_ int fd = -EBADF;

        fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        while (len > 0) {
                ssize_t k = write(fd, data, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                data += k;
                len -= (size_t)k;
        }
        return 0;
}

static int make_dir(const char *name, mode_t mode)
{
        return RET_NERRNO(mkdir(name, mode));
}

static int setup_etc(const SandboxMountPlan *p)
{
        const SandboxRootLayout *l = p->layout;
        int r;

        for (size_t i = 0; i < p->n_etc; i++) {
                r = create_file(p->etc[i].name, p->etc[i].data, p->etc[i].len, 0644);
                if (r < 0)
                        return r;
        }
        /* The dynamic linker reads ld.so.cache to find libraries quickly; without it every
         * library lookup walks the default paths. */
        if (l->has_ld_cache) {
                r = create_file("etc/ld.so.cache", "", 0, 0644);
                if (r >= 0)
                        r = bind_ro("/etc/ld.so.cache", "etc/ld.so.cache", 0);
                if (r < 0)
                        return r;
        }
        if (l->has_ssl_certs) {
                r = make_dir("etc/ssl", 0755);
                if (r >= 0)
                        r = make_dir("etc/ssl/certs", 0755);
                if (r >= 0)
                        r = bind_ro("/etc/ssl/certs", "etc/ssl/certs", MS_NOEXEC);
                if (r < 0)
                        return r;
        }
        /* Debian's /usr/bin/awk and friends are symlinks through /etc/alternatives. */
        if (l->has_alternatives) {
                r = make_dir("etc/alternatives", 0755);
                if (r >= 0)
                        r = bind_ro("/etc/alternatives", "etc/alternatives", MS_NOEXEC);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int setup_root(const SandboxMountPlan *p)
{
        const SandboxRootLayout *l = p->layout;
        int r;

        /* noexec on the root itself: it holds no programs (those live on /usr, reached through
         * the symlinks), and it is read-only by the time anything runs. */
        if (mount("tmpfs", p->root_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  ROOT_TMPFS_OPTS) < 0)
                return negative_errno();
        if (chdir(p->root_dir) < 0)
                return negative_errno();
        for (size_t i = 0; i < ELEMENTSOF(root_dirs); i++) {
                r = make_dir(root_dirs[i], 0755);
                if (r < 0)
                        return r;
        }
        r = bind_ro("/usr", "usr", 0);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->n_links; i++)
                if (symlink(l->links[i].target, l->links[i].name) < 0)
                        return negative_errno();
        return setup_etc(p);
}

static bool path_exists(const char *path)
{
        return faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static int setup_proc(void)
{
        int r;

        /* We are PID 1 of a new pid namespace, so this procfs shows only the sandbox. */
        if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return negative_errno();
        for (size_t i = 0; i < ELEMENTSOF(proc_masked_files); i++) {
                if (!path_exists(proc_masked_files[i]))
                        continue;
                if (mount("/dev/null", proc_masked_files[i], NULL, MS_BIND, NULL) < 0)
                        return negative_errno();
        }
        /* Masked by a read-only bind of the root's empty /sys directory: an empty directory
         * without a file system instance of its own. */
        for (size_t i = 0; i < ELEMENTSOF(proc_masked_dirs); i++) {
                if (!path_exists(proc_masked_dirs[i]))
                        continue;
                r = bind_ro("sys", proc_masked_dirs[i], MS_NOEXEC);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(proc_readonly); i++) {
                if (!path_exists(proc_readonly[i]))
                        continue;
                r = bind_ro(proc_readonly[i], proc_readonly[i], MS_NOEXEC);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int setup_dev(const char *shm_opts)
{
        /* The nodes are binds of the host's, with the flags of the host's /dev mount (device
         * access allowed), made read-only (which still allows writing to a device node: the ro
         * check of open() covers regular files, directories and symlinks; it stops chmod and
         * chown), nosuid and noexec. Any other device node (the sandbox has no CAP_MKNOD
         * anyway) would be inert on the nodev root. */
        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
                int r = create_file(dev_nodes[i].dst, "", 0, 0666);
                if (r < 0)
                        return r;
                if (mount(dev_nodes[i].src, dev_nodes[i].dst, NULL, MS_BIND, NULL) < 0)
                        return negative_errno();
                if (mount(NULL, dev_nodes[i].dst, NULL,
                          MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
                        return negative_errno();
        }
        for (size_t i = 0; i < ELEMENTSOF(dev_links); i++)
                if (symlink(dev_links[i].target, dev_links[i].name) < 0)
                        return negative_errno();
        if (mkdir("dev/shm", 01777) < 0)
                return negative_errno();
        return RET_NERRNO(
            mount("tmpfs", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, shm_opts));
}

static int pivot(void)
{
        char cwd[8];
        int fd;

        /* pivot_root(".", ".") stacks the old root on top of the new one at "/"; detaching "."
         * then removes the old root (and every host mount under it) from this namespace. No
         * directory for the old root is needed, and nothing of the host stays reachable. */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return negative_errno();
        if (umount2(".", MNT_DETACH) < 0)
                return negative_errno();
        if (chdir("/") < 0)
                return negative_errno();
        /* CVE-2024-21626: make sure the cwd is inside the new root, not a leftover host path. */
        if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, "/") != 0)
                return -EPERM;
        if (mount(NULL, "/", NULL,
                  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return negative_errno();
        /* Point stdio at the sandbox's own /dev/null, dropping the host's. */
        fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        for (int i = 0; i < 3; i++)
                if (dup2(fd, i) < 0) {
                        (void)close(fd);
                        return negative_errno();
                }
        (void)close(fd);
        return 0;
}

int sandbox_mount_setup(const SandboxMountPlan *p, SandboxStep *ret_step)
{
        int r;

        /* Receive, never send: nothing we mount may propagate to the host (or anywhere else).
         * Not MS_PRIVATE, which would cut a stem cell's /var/task off its host directory. */
        *ret_step = SANDBOX_STEP_MOUNT_PRIVATE;
        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return negative_errno();

        *ret_step = SANDBOX_STEP_ROOT;
        r = setup_root(p);
        if (r < 0)
                return r;

        if (p->code_dir) {
                *ret_step = SANDBOX_STEP_TASK;
                r = bind_ro(p->code_dir, "var/task", 0);
                if (r < 0)
                        return r;
        }

        *ret_step = SANDBOX_STEP_TMP;
        if (mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, p->tmp_opts) < 0)
                return negative_errno();

        *ret_step = SANDBOX_STEP_PROC;
        r = setup_proc();
        if (r < 0)
                return r;

        *ret_step = SANDBOX_STEP_DEV;
        r = setup_dev(p->shm_opts);
        if (r < 0)
                return r;

        /* The whole new tree (cwd is its root) stops receiving from the host: see the top. */
        *ret_step = SANDBOX_STEP_MOUNT_PRIVATE;
        if (mount(NULL, ".", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return negative_errno();

        if (p->cell_dir) {
                /* Bound from our slave copy of the cell, so it is a slave of the cell too; the
                 * remount changes flags only, never propagation. */
                *ret_step = SANDBOX_STEP_TASK;
                r = bind_ro(p->cell_dir, "var/task", 0);
                if (r < 0)
                        return r;
        }

        *ret_step = SANDBOX_STEP_PIVOT_ROOT;
        return pivot();
}
