/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "sandbox-internal.h"

/* The sandbox's file system (DESIGN.md decisions 2 and 5, security-anchors §2.1, §2.5, §3.1).
 *
 * Every sandbox sees this tree; everything is read-only, nosuid and nodev unless said:
 *
 *   /               tmpfs holding only mount points and the symlinks below (also noexec)
 *   /bin, /lib ...  symlinks into /usr, as on the host (Debian 12 is merged-/usr)
 *   /usr            host /usr
 *   /etc            tmpfs: passwd, group, hosts, nsswitch.conf, resolv.conf (written per
 *                   sandbox); host ld.so.cache, ssl/certs and alternatives (bound, if the host
 *                   has them; the last two noexec)
 *   /var/task       the function's code, or for a stem cell the cell's host directory
 *   /tmp            tmpfs limited in bytes and inodes (rw, nosuid, nodev)
 *   /proc           fresh procfs of the sandbox's pid namespace, sensitive paths masked
 *   /dev            a directory of the root holding null, zero, full, random, urandom (binds of
 *                   the host's nodes: ro, nosuid, noexec, device access allowed), the fd
 *                   symlinks and a size-limited tmpfs /dev/shm (rw, nosuid, nodev, noexec)
 *   /sys            an empty directory
 *
 * What is the same for every sandbox (/, the symlinks, /usr, /dev) is built once per host, in
 * a template mount namespace whose root it is (sandbox_mount_template_new()). A child joins that
 * namespace and unshares a private copy of it: a handful of mounts, where a copy of the daemon's
 * namespace would be every mount of the host, all to be detached again after pivot_root (which
 * costs 50-250 us). What is the sandbox's own is then mounted in its copy: /etc, /var/task,
 * /tmp, /proc and /dev/shm. The host paths it needs (the code, the cell, ld.so.cache, certs,
 * alternatives) are cloned with open_tree() before it leaves the daemon's namespace, as
 * detached mounts that already have their final flags, and attached after.
 *
 * The template's root tmpfs and its binds are shared, read-only, by every sandbox, as /usr
 * always was; nothing in a sandbox can write to them (read-only mounts, no capabilities, no
 * mount syscalls under seccomp). Each file system instance costs a superblock (20-30 us), so a
 * sandbox makes four of its own: /etc, /tmp, /proc and /dev/shm.
 *
 * Propagation. The template is built with MS_REC|MS_SLAVE first (nothing propagates from it to
 * the host) and made MS_PRIVATE recursively before it becomes a root, so its copies are
 * private, and so is every mount a sandbox makes on them: no mount event passes between the
 * host and a sandbox, or between sandboxes. The one exception is a stem cell's /var/task, a
 * clone of the cell's shared host directory made a slave (receive, never send): the daemon's
 * later mount of the code on the cell propagates into it, and only into it.
 *
 * Every destination is inside the sandbox's private copy of the template or a fresh file system
 * of its own, which nothing but this child can see or modify while it is being built, so no
 * destination can be swapped for a symlink under us (CVE-2021-30465 class). Paths are relative
 * to "/": joining the template namespace makes its root the child's root and cwd.
 *
 * All functions below except sandbox_mount_layout_probe() and sandbox_mount_template_new() run
 * in the child between clone and exec: no allocation, no logging. The template is built in a
 * helper process under the same rule. */

#define ROOT_TMPFS_OPTS "size=1m,nr_inodes=512,mode=0755"
#define ETC_TMPFS_OPTS "size=64k,nr_inodes=32,mode=0755"
/* The template helper must report within this time. */
#define TEMPLATE_TIMEOUT_MSEC 5000

static const char *const root_link_names[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};

static const char *const root_dirs[] = {"usr", "etc",  "var", "var/task", "var/runtime",
                                        "tmp", "proc", "dev", "sys",      "dev/shm"};

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
        l.has_bash = is_regular("/usr/bin/bash");
        log_debug("sandbox root: %zu top-level links, ld.so.cache %d, ssl/certs %d, "
                  "alternatives %d",
                  l.n_links, l.has_ld_cache, l.has_ssl_certs, l.has_alternatives);
        *ret = l;
        return 0;
}

/* ---- shared by the template helper and the child ---- */

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

/* ---- the template: once per host, in a helper process ---- */

static int template_dev(void)
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
        return 0;
}

/* In the helper, in a mount namespace of its own: builds the template at root_dir and makes it
 * the namespace's root. */
static int template_build(const SandboxRootLayout *l, const char *root_dir)
{
        char cwd[8];
        int r;

        /* Receive, never send: nothing below may propagate to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return negative_errno();
        /* noexec on the root itself: it holds no programs (those live on /usr, reached through
         * the symlinks). */
        if (mount("tmpfs", root_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, ROOT_TMPFS_OPTS) <
            0)
                return negative_errno();
        if (chdir(root_dir) < 0)
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
        /* Lambda-style runtimes (their bootstraps, python3 and nodejs shims) at /var/runtime. */
        if (l->runtime_dir[0]) {
                r = bind_ro(l->runtime_dir, "var/runtime", 0);
                if (r < 0)
                        return r;
        }
        /* /bin/sh is bash inside, as on Amazon Linux: custom-runtime bootstraps written for
         * Lambda use `set -o pipefail` and `source`, which dash refuses. /usr/bin/sh is a link
         * to dash; the mount follows it and covers dash in this namespace only. */
        if (l->has_bash) {
                r = bind_ro("/usr/bin/bash", "usr/bin/sh", 0);
                if (r < 0)
                        return r;
        }
        r = template_dev();
        if (r < 0)
                return r;
        /* A bind keeps its source's peer group or master (the binds of host /usr and /dev
         * nodes would receive what the host mounts there): cut them all off. */
        if (mount(NULL, ".", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return negative_errno();
        /* pivot_root(".", ".") stacks the old root on top of the new one at "/"; detaching "."
         * then removes the old root (and every host mount under it) from the namespace. */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return negative_errno();
        if (umount2(".", MNT_DETACH) < 0)
                return negative_errno();
        if (chdir("/") < 0)
                return negative_errno();
        if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, "/") != 0)
                return -EPERM;
        return RET_NERRNO(mount(NULL, "/", NULL,
                                MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                NULL));
}

static _Noreturn void template_helper(const SandboxRootLayout *l, const char *root_dir, int fd)
{
        int r, e;

        /* The modes below are the sandbox's: not narrowed by whatever umask the daemon has. */
        (void)umask(0022);
        r = RET_NERRNO(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));
        if (r >= 0)
                r = RET_NERRNO(unshare(CLONE_NEWNS));
        if (r >= 0)
                r = template_build(l, root_dir);
        e = r < 0 ? -r : 0;
        (void)!write(fd, &e, sizeof(e));
        if (r < 0)
                _exit(EXIT_FAILURE);
        /* Kept alive until the daemon has opened the namespace; then it kills us. */
        for (;;)
                (void)pause();
}

int sandbox_mount_template_new(const SandboxRootLayout *l, const char *root_dir, int *ret,
                               FnError *reterr)
{
        _cleanup_close_ int rd = -EBADF, fd = -EBADF;
        struct pollfd pfd;
        char path[64];
        int pp[2], e = EIO;
        ssize_t n = -1;
        pid_t pid;

        if (pipe2(pp, O_CLOEXEC) < 0)
                return fn_error_set(reterr, negative_errno(), "template: pipe2 failed");
        rd = pp[0];
        pid = fork();
        if (pid < 0) {
                (void)close(pp[1]);
                return fn_error_set(reterr, negative_errno(), "template: fork failed");
        }
        if (pid == 0)
                template_helper(l, root_dir, pp[1]);
        (void)close(pp[1]);
        pfd = (struct pollfd){.fd = rd, .events = POLLIN};
        if (poll(&pfd, 1, TEMPLATE_TIMEOUT_MSEC) > 0)
                n = read(rd, &e, sizeof(e));
        if (n == (ssize_t)sizeof(e) && e == 0) {
                (void)snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        e = errno;
        }
        (void)kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (fd < 0)
                return fn_error_set(reterr, -(e ? e : EIO),
                                    "cannot build the sandbox root template: %s",
                                    strerror(e ? e : EIO));
        *ret = TAKE_FD(fd);
        return 0;
}

/* ---- child side ---- */

/* A detached clone of path (not recursive: its submounts stay out), read-only, nosuid, nodev
 * and extra, with the given propagation. Every copy made of it later has the same flags. */
static int clone_ro(const char *path, uint64_t extra, uint64_t propagation, int *ret)
{
        struct mount_attr attr = {
            .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | extra,
            .propagation = propagation,
        };
        int fd, r;

        fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
                r = negative_errno();
                (void)close(fd);
                return r;
        }
        *ret = fd;
        return 0;
}

static int attach(int fd, const char *dst)
{
        return RET_NERRNO(move_mount(fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH));
}

/* Host paths to clone in the daemon's namespace, where they are, and their flags. */
typedef struct Clones {
        int task, ld_cache, certs, alternatives;
} Clones;

static void clones_close(Clones *c)
{
        (void)safe_close(c->task);
        (void)safe_close(c->ld_cache);
        (void)safe_close(c->certs);
        (void)safe_close(c->alternatives);
}

static int clone_etc(const SandboxRootLayout *l, Clones *c)
{
        int r = 0;

        /* The dynamic linker reads ld.so.cache to find libraries quickly; cloned per sandbox,
         * so that an ldconfig run on the host is seen by the next sandbox. */
        if (l->has_ld_cache)
                r = clone_ro("/etc/ld.so.cache", 0, MS_PRIVATE, &c->ld_cache);
        if (r >= 0 && l->has_ssl_certs)
                r = clone_ro("/etc/ssl/certs", MOUNT_ATTR_NOEXEC, MS_PRIVATE, &c->certs);
        /* Debian's /usr/bin/awk and friends are symlinks through /etc/alternatives. */
        if (r >= 0 && l->has_alternatives)
                r = clone_ro("/etc/alternatives", MOUNT_ATTR_NOEXEC, MS_PRIVATE, &c->alternatives);
        return r;
}

static int setup_etc(const SandboxMountPlan *p, const Clones *c)
{
        int r;

        if (mount("tmpfs", "etc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, ETC_TMPFS_OPTS) < 0)
                return negative_errno();
        for (size_t i = 0; i < p->n_etc; i++) {
                r = create_file(p->etc[i].name, p->etc[i].data, p->etc[i].len, 0644);
                if (r < 0)
                        return r;
        }
        if (c->ld_cache >= 0) {
                r = create_file("etc/ld.so.cache", "", 0, 0644);
                if (r >= 0)
                        r = attach(c->ld_cache, "etc/ld.so.cache");
                if (r < 0)
                        return r;
        }
        if (c->certs >= 0) {
                r = make_dir("etc/ssl", 0755);
                if (r >= 0)
                        r = make_dir("etc/ssl/certs", 0755);
                if (r >= 0)
                        r = attach(c->certs, "etc/ssl/certs");
                if (r < 0)
                        return r;
        }
        if (c->alternatives >= 0) {
                r = make_dir("etc/alternatives", 0755);
                if (r >= 0)
                        r = attach(c->alternatives, "etc/alternatives");
                if (r < 0)
                        return r;
        }
        return RET_NERRNO(mount(NULL, "etc", NULL,
                                MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                NULL));
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

/* Stdio onto the sandbox's own /dev/null, dropping the host's; cwd checked. */
static int finish(void)
{
        char cwd[8];
        int fd;

        if (chdir("/") < 0)
                return negative_errno();
        /* CVE-2024-21626: make sure the cwd is inside the new root, not a leftover host path. */
        if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, "/") != 0)
                return -EPERM;
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

/* Leaves the daemon's mount namespace for a private copy of the template; root and cwd are
 * its root then. Our fd of the template goes, so nothing of it stays reachable. */
static int enter_template(void)
{
        int r = RET_NERRNO(setns(SANDBOX_FD_MOUNT_NS, CLONE_NEWNS));

        (void)close(SANDBOX_FD_MOUNT_NS);
        if (r < 0)
                return r;
        return RET_NERRNO(unshare(CLONE_NEWNS));
}

static int mount_setup(const SandboxMountPlan *p, Clones *c, SandboxStep *ret_step)
{
        int r;

        /* In the daemon's namespace: clone what comes from the host. A stem cell's /var/task
         * is a slave of the cell's shared directory: receive the code, never send. */
        *ret_step = SANDBOX_STEP_TASK;
        r = clone_ro(p->code_dir ? p->code_dir : p->cell_dir, 0,
                     p->code_dir ? MS_PRIVATE : MS_SLAVE, &c->task);
        if (r < 0)
                return r;
        *ret_step = SANDBOX_STEP_ROOT;
        r = clone_etc(p->layout, c);
        if (r < 0)
                return r;

        *ret_step = SANDBOX_STEP_MOUNT_PRIVATE;
        r = enter_template();
        if (r < 0)
                return r;

        *ret_step = SANDBOX_STEP_ROOT;
        r = setup_etc(p, c);
        if (r < 0)
                return r;

        *ret_step = SANDBOX_STEP_TASK;
        r = attach(c->task, "var/task");
        if (r < 0)
                return r;

        *ret_step = SANDBOX_STEP_TMP;
        if (mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, p->tmp_opts) < 0)
                return negative_errno();

        *ret_step = SANDBOX_STEP_PROC;
        r = setup_proc();
        if (r < 0)
                return r;

        *ret_step = SANDBOX_STEP_DEV;
        if (mount("tmpfs", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, p->shm_opts) < 0)
                return negative_errno();

        *ret_step = SANDBOX_STEP_PIVOT_ROOT;
        return finish();
}

int sandbox_mount_setup(const SandboxMountPlan *p, SandboxStep *ret_step)
{
        Clones c = {.task = -EBADF, .ld_cache = -EBADF, .certs = -EBADF, .alternatives = -EBADF};
        int r = mount_setup(p, &c, ret_step);

        clones_close(&c);
        return r;
}
