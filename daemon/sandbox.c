/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox.h"

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "log.h"
#include "sandbox-cgroup.h"
#include "sandbox-internal.h"
#include "util.h"

/* The sandbox mechanism: see sandbox.h for the contract and DESIGN.md decision 2 for the
 * sequence. This file holds the parent side (host setup, spawn, reap, kill, teardown) and the
 * child's fixed sequence between clone3 and execveat; the mounts, seccomp, capabilities and
 * network live in sandbox-{mount,seccomp,caps,net}.c. */

#define SANDBOX_HOSTNAME "fnbox"
#define SANDBOX_FREE_WAIT_MSEC 2000
#define SHM_BYTES_MAX (64ULL << 20)
#define SHM_INODES_MAX 1024ULL
#define NOFILE_MIN 16
/* The mount point of every sandbox's root, each in its own mount namespace. Not a valid
 * sandbox id, so cleanup_stale never takes it for a sandbox's run dir. */
#define ROOT_MOUNT_POINT ".root"
/* Upper bound of the network namespace pool (each holds a loopback device and some memory). */
#define NETNS_POOL_MAX 4096U
/* Stacked mounts cleanup_stale peels off a leftover cell (the cell's bind and the code). */
#define CELL_MOUNTS_MAX 8

struct SandboxHost {
        char *run_dir;
        int run_dir_fd;
        bool run_dir_mounted; /* we bound run_dir onto itself (to make it private) */
        char *root_dir;       /* <run_dir>/.root, where the template root is built */
        int template_fd;      /* mount namespace every sandbox's root is copied from */
        int agent_fd; /* sealed memfd copy of the agent (or the file itself, see agent_open) */
        CgroupRoot *cgroot;
        struct sock_fprog seccomp;
        SandboxCaps caps;
        SandboxRootLayout layout;
        uid_t uid_base;
        uint32_t uid_count;
        uint32_t next_slot;
        uint8_t *slot_used; /* uid_count bytes */
        uint32_t n_live;    /* sandboxes not yet freed; they point at this host */
        int orig_netns_fd;  /* the daemon's own network namespace, opened at the first refill */
        int *netns;         /* pool of pre-made network namespaces, each for one sandbox */
        unsigned n_netns, netns_target;
};

struct Sandbox {
        SandboxHost *host;
        char *id;
        Cgroup *cg;
        uint32_t slot;
        bool have_slot;
        bool stem;         /* spawned without code: /var/task is a slave of the cell dir */
        bool cell_made;    /* <run_dir>/<id> exists */
        bool cell_mounted; /* ... and is a shared bind mount on itself */
        bool code_loaded;  /* sandbox_load_code() bound code onto the cell */
        char *cell_dir;    /* <run_dir>/<id> */
        uint64_t pids_max;
        pid_t pid;
        int pidfd;
        int channel_fd; /* daemon end */
        int sync_fd;    /* read end of the child's error pipe */
        bool reaped;
        bool frozen; /* sandbox_freeze(true) succeeded and no thaw since */
        SandboxExit exit;
};

/* Everything the child reads, prepared by the parent before clone3. */
typedef struct ChildPlan {
        const SandboxHost *host;
        SandboxMountPlan mount;
        const char *const *procs_paths; /* cgroup.procs files to join; NULL: joined by clone3 */
        int netns_fd;                   /* pooled network namespace to join, or -EBADF */
        int channel_fd;                 /* child's end */
        int sync_fd;                    /* write end */
        uid_t uid;
        gid_t gid;
        struct rlimit nofile;
        struct rlimit core;
} ChildPlan;

static const char *const step_names[_SANDBOX_STEP_MAX] = {
    [SANDBOX_STEP_CGROUP] = "cgroup",
    [SANDBOX_STEP_FDS] = "fds",
    [SANDBOX_STEP_MOUNT_PRIVATE] = "mount-private",
    [SANDBOX_STEP_ROOT] = "mount-root",
    [SANDBOX_STEP_TASK] = "task",
    [SANDBOX_STEP_TMP] = "tmp",
    [SANDBOX_STEP_PROC] = "proc",
    [SANDBOX_STEP_DEV] = "dev",
    [SANDBOX_STEP_PIVOT_ROOT] = "pivot-root",
    [SANDBOX_STEP_NETWORK] = "network",
    [SANDBOX_STEP_HOSTNAME] = "hostname",
    [SANDBOX_STEP_SETSID] = "setsid",
    [SANDBOX_STEP_RLIMITS] = "rlimits",
    [SANDBOX_STEP_IDS] = "ids",
    [SANDBOX_STEP_CAPS] = "caps",
    [SANDBOX_STEP_NO_NEW_PRIVS] = "no-new-privs",
    [SANDBOX_STEP_SECCOMP] = "seccomp",
    [SANDBOX_STEP_EXEC] = "exec",
};

const char *sandbox_step_to_string(SandboxStep s)
{
        if (s < 0 || s >= _SANDBOX_STEP_MAX)
                return NULL;
        return step_names[s];
}

static const char etc_hosts[] = "127.0.0.1\tlocalhost " SANDBOX_HOSTNAME "\n"
                                "::1\tlocalhost ip6-localhost ip6-loopback\n";
static const char etc_nsswitch[] = "passwd: files\n"
                                   "group: files\n"
                                   "shadow: files\n"
                                   "hosts: files dns\n";

/* ======================================================================================== */
/* The child: a fixed, fail-closed sequence. No allocation, no logging, no return.          */
/* ======================================================================================== */

static _Noreturn void child_fail(int sync_fd, SandboxStep step, int r)
{
        SandboxSyncMsg m = {.step = step, .error = r < 0 ? -r : EIO};

        /* If this write fails the parent still sees a failed exit, just without the step. */
        (void)!write(sync_fd, &m, sizeof(m));
        _exit(EXIT_FAILURE);
}

static int child_join_cgroup(const char *const *paths)
{
        /* cgroup v1 (or v2 without CLONE_INTO_CGROUP): join before running anything else, so
         * every page and task of the sandbox is charged to its own group. */
        for (; paths && *paths; paths++) {
                int fd = open(*paths, O_WRONLY | O_CLOEXEC | O_NOCTTY);
                ssize_t n;

                if (fd < 0)
                        return negative_errno();
                n = write(fd, "0", 1);
                if (n != 1) {
                        int r = n < 0 ? negative_errno() : -EIO;
                        (void)close(fd);
                        return r;
                }
                (void)close(fd);
        }
        /* A cgroup namespace rooted at the sandbox's group: /proc/self/cgroup shows "/", and
         * the host's cgroup paths stay hidden. */
        return RET_NERRNO(unshare(CLONE_NEWCGROUP));
}

static void child_reset_signals(void)
{
        struct sigaction sa = {.sa_handler = SIG_DFL};
        sigset_t none;

        /* The daemon blocks the signals it reads from a signalfd and ignores SIGPIPE; masks and
         * ignored dispositions survive execve, and the agent must start with neither. */
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &sa, NULL);
        (void)sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Moves the channel, the sync pipe, the agent binary and the template mount namespace to their
 * fixed numbers, points stdio at /dev/null and closes everything else (CVE-2024-21626: no daemon fd
 * may reach the sandbox). *sync_fd follows the sync pipe, so a failure is always reported on it. */
static int child_fds(const ChildPlan *p, int *sync_fd)
{
        int chan, sync, agent, mntns, devnull;

        child_reset_signals();
        (void)umask(0022);

        /* First copy the four above the fixed numbers, so dup3() below cannot clobber one
         * of them (any of them may be 3, 4, 5 or 6 in the daemon). */
        chan = fcntl(p->channel_fd, F_DUPFD_CLOEXEC, 10);
        sync = fcntl(p->sync_fd, F_DUPFD_CLOEXEC, 10);
        agent = fcntl(p->host->agent_fd, F_DUPFD_CLOEXEC, 10);
        mntns = fcntl(p->host->template_fd, F_DUPFD_CLOEXEC, 10);
        if (chan < 0 || sync < 0 || agent < 0 || mntns < 0)
                return negative_errno();
        *sync_fd = sync;
        /* The channel is the one fd the agent keeps across exec: no CLOEXEC. */
        if (dup3(chan, SANDBOX_FD_CHANNEL, 0) < 0 || dup3(sync, SANDBOX_FD_SYNC, O_CLOEXEC) < 0 ||
            dup3(agent, SANDBOX_FD_AGENT, O_CLOEXEC) < 0 ||
            dup3(mntns, SANDBOX_FD_MOUNT_NS, O_CLOEXEC) < 0)
                return negative_errno();
        *sync_fd = SANDBOX_FD_SYNC;

        /* The host's /dev/null for now; pivot() swaps in the sandbox's own. */
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (devnull < 0)
                return negative_errno();
        for (int i = 0; i < 3; i++)
                if (dup2(devnull, i) < 0)
                        return negative_errno();
        /* Also closes devnull unless it landed on 0-2. */
        return RET_NERRNO(close_range(SANDBOX_FD_MOUNT_NS + 1, ~0U, 0));
}

static int child_session(void)
{
        if (setsid() < 0)
                return negative_errno();
        /* Set again after the uid switch, which clears it (see child_ids()). */
        return RET_NERRNO(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));
}

static int child_rlimits(const ChildPlan *p)
{
        if (setrlimit(RLIMIT_NOFILE, &p->nofile) < 0)
                return negative_errno();
        return RET_NERRNO(setrlimit(RLIMIT_CORE, &p->core));
}

static int child_ids(const ChildPlan *p)
{
        struct pollfd pfd = {.fd = SANDBOX_FD_CHANNEL, .events = POLLRDHUP};

        /* No supplementary groups (root's group 0 would otherwise stay), then gid before uid:
         * after setresuid we could no longer change the gid. */
        if (setgroups(0, NULL) < 0)
                return negative_errno();
        if (setresgid(p->gid, p->gid, p->gid) < 0)
                return negative_errno();
        if (setresuid(p->uid, p->uid, p->uid) < 0)
                return negative_errno();
        /* The kernel clears the parent-death signal whenever the euid/egid change, so arm it
         * again now, under the final ids. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                return negative_errno();
        /* getppid() is 0 for PID 1 of a pid namespace, so it cannot tell whether the daemon
         * died before the signal was armed. The channel can: if the daemon's end is closed,
         * give up rather than run an agent nobody talks to. */
        if (poll(&pfd, 1, 0) < 0)
                return negative_errno();
        if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))
                return -ESRCH;
        return 0;
}

static _Noreturn void child_run(const ChildPlan *p)
{
        static char *const argv[] = {(char *)"fnbox-agent", NULL};
        static char *const envp[] = {(char *)"PATH=/usr/local/bin:/usr/bin:/bin",
                                     (char *)"LANG=C.UTF-8", (char *)"HOME=/tmp", NULL};
        int sync_fd = p->sync_fd;
        SandboxStep step;
        int r;

        r = child_join_cgroup(p->procs_paths);
        if (r < 0)
                child_fail(sync_fd, SANDBOX_STEP_CGROUP, r);
        /* A pooled namespace is joined first thing, while we are surely still privileged; its
         * loopback is up already. child_fds() closes our copy of the fd. */
        if (p->netns_fd >= 0 && setns(p->netns_fd, CLONE_NEWNET) < 0)
                child_fail(sync_fd, SANDBOX_STEP_NETWORK, negative_errno());
        r = child_fds(p, &sync_fd);
        if (r < 0)
                child_fail(sync_fd, SANDBOX_STEP_FDS, r);
        r = sandbox_mount_setup(&p->mount, &step);
        if (r < 0)
                child_fail(sync_fd, step, r);
        if (p->netns_fd < 0) {
                r = sandbox_net_loopback_up();
                if (r < 0)
                        child_fail(sync_fd, SANDBOX_STEP_NETWORK, r);
        }
        if (sethostname(SANDBOX_HOSTNAME, strlen(SANDBOX_HOSTNAME)) < 0)
                child_fail(sync_fd, SANDBOX_STEP_HOSTNAME, negative_errno());
        r = child_session();
        if (r < 0)
                child_fail(sync_fd, SANDBOX_STEP_SETSID, r);
        r = child_rlimits(p);
        if (r < 0)
                child_fail(sync_fd, SANDBOX_STEP_RLIMITS, r);
        /* Bounding and ambient sets first: dropping from the bounding set needs CAP_SETPCAP,
         * which the uid switch takes away. */
        r = sandbox_caps_drop_bounding(&p->host->caps);
        if (r < 0)
                child_fail(sync_fd, SANDBOX_STEP_CAPS, r);
        r = child_ids(p);
        if (r < 0)
                child_fail(sync_fd, SANDBOX_STEP_IDS, r);
        r = sandbox_caps_clear(&p->host->caps);
        if (r < 0)
                child_fail(sync_fd, SANDBOX_STEP_CAPS, r);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                child_fail(sync_fd, SANDBOX_STEP_NO_NEW_PRIVS, negative_errno());
        /* Last before exec, so the filter does not have to allow anything the setup needs. */
        r = sandbox_seccomp_load(&p->host->seccomp);
        if (r < 0)
                child_fail(sync_fd, SANDBOX_STEP_SECCOMP, r);
        (void)syscall(SYS_execveat, SANDBOX_FD_AGENT, "", argv, envp, AT_EMPTY_PATH);
        child_fail(sync_fd, SANDBOX_STEP_EXEC, negative_errno());
}

/* ======================================================================================== */
/* Host                                                                                     */
/* ======================================================================================== */

/* CVE-2019-5736: the agent runs from a sealed in-memory copy, so nothing inside a sandbox can
 * write to the binary the next sandbox will run, whatever it reaches through /proc/self/exe. */
static int agent_copy_memfd(int src, int *ret)
{
        _cleanup_close_ int mfd = -EBADF;
        char buf[65536];
        int r;

#ifdef MFD_EXEC
        mfd = memfd_create("fnbox-agent", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
        if (mfd < 0 && errno == EINVAL) /* COMPAT(kernel < 6.3): remove when 6.3 is the floor */
#endif
                mfd = memfd_create("fnbox-agent", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (mfd < 0)
                return negative_errno();
        for (;;) {
                ssize_t n = read(src, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                r = loop_write(mfd, buf, (size_t)n);
                if (r < 0)
                        return r;
        }
        if (fchmod(mfd, 0555) < 0 ||
            fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return negative_errno();
        *ret = TAKE_FD(mfd);
        return 0;
}

static int agent_open(const char *path, int *ret, FnError *reterr)
{
        _cleanup_close_ int src = -EBADF, fd = -EBADF;
        struct stat st;
        int r;

        src = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (src < 0)
                return fn_error_set(reterr, negative_errno(), "cannot open agent '%s'", path);
        if (fstat(src, &st) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot stat agent '%s'", path);
        if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
                return fn_error_set(reterr, -EACCES, "agent '%s' is not an executable file", path);
        r = agent_copy_memfd(src, ret);
        if (r >= 0)
                return 0;
        /* Hosts with vm.memfd_noexec=2 forbid executable memfds. Then exec the file itself,
         * which must be root-owned and writable by root only, so no sandbox uid can change it. */
        log_debug_errno(r, "cannot make a sealed copy of the agent, using the file: %m");
        if (st.st_uid != 0 || (st.st_mode & 0022))
                return fn_error_set(reterr, -EPERM,
                                    "agent '%s' must be owned by root and not group/world "
                                    "writable (no sealed copy possible: %s)",
                                    path, strerror(-r));
        fd = open(path, O_PATH | O_CLOEXEC);
        if (fd < 0)
                return fn_error_set(reterr, negative_errno(), "cannot open agent '%s'", path);
        *ret = TAKE_FD(fd);
        return 0;
}

static int is_mount_root(int dir_fd, const char *path)
{
        struct statx sx;

        if (statx(dir_fd, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &sx) < 0)
                return negative_errno();
        /* COMPAT(kernel < 5.8): no STATX_ATTR_MOUNT_ROOT; remove when 5.8 is the floor. */
        if (!(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
                return -EOPNOTSUPP;
        return !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Stem cells' directories are shared bind mounts in the daemon's mount namespace. Under a
 * shared parent (systemd makes "/" shared) each cell, and each function's code bound onto it,
 * would also appear in every peer and slave of that parent: other services' and containers'
 * mount namespaces. A private bind of run_dir onto itself keeps them in here. The bind is left
 * in place if it was there already (an earlier daemon's). */
static int run_dir_make_private(SandboxHost *h, FnError *reterr)
{
        int r = is_mount_root(AT_FDCWD, h->run_dir);

        if (r < 0)
                return fn_error_set(reterr, r, "cannot stat run dir '%s'", h->run_dir);
        if (r == 0) {
                if (mount(h->run_dir, h->run_dir, NULL, MS_BIND, NULL) < 0)
                        return fn_error_set(reterr, negative_errno(),
                                            "cannot bind run dir '%s' onto itself", h->run_dir);
                h->run_dir_mounted = true;
        }
        if (mount(NULL, h->run_dir, NULL, MS_PRIVATE, NULL) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot make run dir '%s' private",
                                    h->run_dir);
        return 0;
}

static int run_dir_open(SandboxHost *h, const char *path, FnError *reterr)
{
        struct stat st, again;
        int r;

        r = mkdir_p(path, 0700);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot create run dir '%s'", path);
        h->run_dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (h->run_dir_fd < 0)
                return fn_error_set(reterr, negative_errno(), "cannot open run dir '%s'", path);
        if (fstat(h->run_dir_fd, &st) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot stat run dir '%s'", path);
        /* Others must not be able to plant entries where sandbox roots get mounted. */
        if (st.st_uid != geteuid() || (st.st_mode & 0022))
                return fn_error_set(reterr, -EPERM,
                                    "run dir '%s' must be owned by us and not group/world "
                                    "writable",
                                    path);
        h->run_dir = strdup(path);
        if (!h->run_dir)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        r = run_dir_make_private(h, reterr);
        if (r < 0)
                return r;
        /* Again, now through the bind: lookups from an fd of the directory underneath would
         * not see the cells mounted in run_dir. */
        h->run_dir_fd = safe_close(h->run_dir_fd);
        h->run_dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (h->run_dir_fd < 0)
                return fn_error_set(reterr, negative_errno(), "cannot open run dir '%s'", path);
        if (fstat(h->run_dir_fd, &again) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot stat run dir '%s'", path);
        if (again.st_ino != st.st_ino || again.st_dev != st.st_dev)
                return fn_error_set(reterr, -EBUSY, "run dir '%s' changed while opening it", path);
        if (mkdirat(h->run_dir_fd, ROOT_MOUNT_POINT, 0700) < 0 && errno != EEXIST)
                return fn_error_set(reterr, negative_errno(), "cannot create %s/%s", path,
                                    ROOT_MOUNT_POINT);
        if (asprintf(&h->root_dir, "%s/%s", path, ROOT_MOUNT_POINT) < 0) {
                h->root_dir = NULL;
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        }
        return 0;
}

static int host_config_check(const SandboxHostConfig *cfg, FnError *reterr)
{
        if (!cfg->agent_path || !cfg->run_dir || !cfg->cgroup_root || !cfg->cgroup_parent)
                return fn_error_set(reterr, -EINVAL, "sandbox host config is incomplete");
        if (cfg->run_dir[0] != '/')
                return fn_error_set(reterr, -EINVAL, "run dir '%s' is not absolute", cfg->run_dir);
        if (cfg->uid_base == 0 || cfg->uid_count == 0 ||
            (uint64_t)cfg->uid_base + cfg->uid_count > (uint64_t)UINT32_MAX - 1)
                return fn_error_set(reterr, -EINVAL, "bad sandbox uid range %u+%u",
                                    (unsigned)cfg->uid_base, cfg->uid_count);
        return 0;
}

int sandbox_host_new(const SandboxHostConfig *cfg, SandboxHost **ret, FnError *reterr)
{
        _cleanup_(sandbox_host_freep) SandboxHost *h = NULL;
        int r;

        r = host_config_check(cfg, reterr);
        if (r < 0)
                return r;
        h = calloc(1, sizeof(*h));
        if (!h)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        h->run_dir_fd = h->agent_fd = h->orig_netns_fd = h->template_fd = -EBADF;
        h->uid_base = cfg->uid_base;
        h->uid_count = cfg->uid_count;
        h->slot_used = calloc(cfg->uid_count, 1);
        if (!h->slot_used)
                return fn_error_set(reterr, -ENOMEM, "out of memory");

        r = run_dir_open(h, cfg->run_dir, reterr);
        if (r < 0)
                return r;
        r = agent_open(cfg->agent_path, &h->agent_fd, reterr);
        if (r < 0)
                return r;
        r = sandbox_mount_layout_probe(&h->layout, reterr);
        if (r < 0)
                return r;
        if (cfg->runtime_dir) {
                if ((size_t)snprintf(h->layout.runtime_dir, sizeof(h->layout.runtime_dir), "%s",
                                     cfg->runtime_dir) >= sizeof(h->layout.runtime_dir))
                        return fn_error_set(reterr, -ENAMETOOLONG, "runtime dir path too long");
                if (access(cfg->runtime_dir, R_OK | X_OK) < 0)
                        return fn_error_set(reterr, negative_errno(),
                                            "cannot use the runtimes dir %s: %s", cfg->runtime_dir,
                                            strerror(errno));
        }
        r = sandbox_mount_template_new(&h->layout, h->root_dir, &h->template_fd, reterr);
        if (r < 0)
                return r;
        r = sandbox_caps_init(&h->caps, reterr);
        if (r < 0)
                return r;
        r = sandbox_seccomp_build(&h->seccomp, reterr);
        if (r < 0)
                return r;
        r = cgroup_root_open(cfg->cgroup_root, cfg->cgroup_parent, &h->cgroot, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(h);
        return 0;
}

SandboxHost *sandbox_host_free(SandboxHost *h)
{
        if (!h)
                return NULL;
        /* Sandboxes point at their host: free them first. */
        assert(h->n_live == 0);
        h->cgroot = cgroup_root_free(h->cgroot);
        sandbox_seccomp_done(&h->seccomp);
        sandbox_caps_done(&h->caps);
        h->agent_fd = safe_close(h->agent_fd);
        h->template_fd = safe_close(h->template_fd);
        h->run_dir_fd = safe_close(h->run_dir_fd);
        while (h->n_netns > 0)
                (void)safe_close(h->netns[--h->n_netns]);
        free(h->netns);
        h->orig_netns_fd = safe_close(h->orig_netns_fd);
        /* Detached lazily: it holds nothing but empty directories once every sandbox is gone.
         * .root stays: another host may use the same run dir. */
        if (h->run_dir_mounted && umount2(h->run_dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                log_debug_errno(negative_errno(), "cannot unmount run dir %s, ignoring: %m",
                                h->run_dir);
        free(h->slot_used);
        free(h->root_dir);
        free(h->run_dir);
        free(h);
        return NULL;
}

const char *sandbox_host_cgroup_version(const SandboxHost *h)
{
        return cgroup_root_version(h->cgroot) == CGROUP_V2 ? "v2" : "v1";
}

static int cleanup_stale_run_dir(SandboxHost *h, const char *name)
{
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "%s/%s", h->run_dir, name) < 0)
                return -ENOMEM;
        /* A stem cell's directory is a bind mount on itself, maybe with a function's code bound
         * on top: detach them all (EINVAL: not a mount point any more). */
        for (int i = 0; i < CELL_MOUNTS_MAX; i++)
                if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                        break;
        /* rm_rf_at() does not cross into other file systems, but a bind of a code directory
         * is on the same one: never recurse into a mount, or we would delete a function's
         * code. */
        r = is_mount_root(h->run_dir_fd, name);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r > 0)
                return -EBUSY;
        return rm_rf_at(h->run_dir_fd, name);
}

int sandbox_host_cleanup_stale(SandboxHost *h)
{
        DIR *d;
        struct dirent *de;
        int r, ret = 0;

        /* Only at start-up: a live sandbox's run dir would look stale too. */
        if (h->n_live > 0)
                return -EBUSY;
        r = cgroup_root_cleanup_stale(h->cgroot);
        if (r < 0) {
                log_debug_errno(r, "cannot remove stale cgroups: %m");
                ret = r;
        }
        r = opendir_at(h->run_dir_fd, ".", 0, &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                if (!name_is_valid(de->d_name))
                        continue; /* also skips "." and ".." */
                r = cleanup_stale_run_dir(h, de->d_name);
                if (r < 0) {
                        log_debug_errno(r, "cannot remove stale run dir %s: %m", de->d_name);
                        if (ret == 0)
                                ret = r;
                }
        }
        (void)closedir(d);
        return ret;
}

/* ======================================================================================== */
/* Spawn                                                                                    */
/* ======================================================================================== */

static int slot_alloc(SandboxHost *h, uint32_t *ret)
{
        /* Round-robin from the last slot handed out, so a uid is reused as late as possible. */
        for (uint32_t i = 0; i < h->uid_count; i++) {
                uint32_t s = (h->next_slot + i) % h->uid_count;
                if (!h->slot_used[s]) {
                        h->slot_used[s] = 1;
                        h->next_slot = (s + 1) % h->uid_count;
                        *ret = s;
                        return 0;
                }
        }
        return -EBUSY;
}

static int spec_check(const SandboxSpec *spec, FnError *reterr)
{
        if (!spec->id || !name_is_valid(spec->id))
                return fn_error_set(reterr, -EINVAL, "bad sandbox id");
        if (spec->code_dir && spec->code_dir[0] != '/')
                return fn_error_set(reterr, -EINVAL, "code dir must be an absolute path");
        /* A function never runs without its limits: 0 would mean "unlimited" to tmpfs and
         * to several cgroup files. */
        if (spec->memory_bytes == 0 || spec->pids_max == 0 || spec->tmp_bytes == 0 ||
            spec->tmp_inodes == 0)
                return fn_error_set(reterr, -EINVAL,
                                    "memory, pids, tmp size and tmp inodes must be limited");
        if (spec->nofile < NOFILE_MIN)
                return fn_error_set(reterr, -EINVAL, "nofile must be at least %d", NOFILE_MIN);
        return 0;
}

/* Parent-side buffers for the child's /etc and tmpfs options; live on spawn's stack. */
typedef struct PlanBuffers {
        char passwd[256];
        char group[128];
        char tmp_opts[128];
        char shm_opts[128];
} PlanBuffers;

static void plan_etc_add(ChildPlan *p, const char *name, const char *data)
{
        assert(p->mount.n_etc < SANDBOX_ETC_FILES_MAX);
        p->mount.etc[p->mount.n_etc++] =
            (SandboxEtcFile){.name = name, .data = data, .len = strlen(data)};
}

static int plan_build(SandboxHost *h, Sandbox *s, const SandboxSpec *spec, const int child_fds[2],
                      PlanBuffers *b, ChildPlan *p)
{
        uid_t uid = h->uid_base + s->slot;
        struct rlimit cur;

        *p = (ChildPlan){.host = h,
                         .netns_fd = -EBADF,
                         .channel_fd = child_fds[0],
                         .sync_fd = child_fds[1],
                         .uid = uid,
                         .gid = (gid_t)uid};
        p->procs_paths = cgroup_dir_fd(s->cg) >= 0 ? NULL : cgroup_procs_paths(s->cg);

        /* Only ever lower rlimits: without CAP_SYS_RESOURCE a raise above the hard limit
         * fails, and a failed step aborts the sandbox. */
        if (getrlimit(RLIMIT_NOFILE, &cur) < 0)
                return negative_errno();
        p->nofile.rlim_cur = p->nofile.rlim_max = MIN((rlim_t)spec->nofile, cur.rlim_max);
        p->core = (struct rlimit){0, 0};

        (void)snprintf(b->passwd, sizeof(b->passwd),
                       "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                       "sbx:x:%u:%u:fnbox sandbox:/tmp:/usr/sbin/nologin\n"
                       "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                       (unsigned)uid, (unsigned)uid);
        (void)snprintf(b->group, sizeof(b->group), "root:x:0:\nsbx:x:%u:\nnogroup:x:65534:\n",
                       (unsigned)uid);
        (void)snprintf(b->tmp_opts, sizeof(b->tmp_opts),
                       "size=%llu,nr_inodes=%llu,mode=1777,uid=%u,gid=%u",
                       (unsigned long long)spec->tmp_bytes, (unsigned long long)spec->tmp_inodes,
                       (unsigned)uid, (unsigned)uid);
        (void)snprintf(b->shm_opts, sizeof(b->shm_opts), "size=%llu,nr_inodes=%llu,mode=1777",
                       (unsigned long long)MIN(spec->tmp_bytes, SHM_BYTES_MAX),
                       (unsigned long long)MIN(spec->tmp_inodes, SHM_INODES_MAX));

        p->mount.layout = &h->layout;
        p->mount.code_dir = spec->code_dir;
        p->mount.cell_dir = s->stem ? s->cell_dir : NULL;
        p->mount.tmp_opts = b->tmp_opts;
        p->mount.shm_opts = b->shm_opts;
        plan_etc_add(p, "etc/passwd", b->passwd);
        plan_etc_add(p, "etc/group", b->group);
        plan_etc_add(p, "etc/hosts", etc_hosts);
        plan_etc_add(p, "etc/nsswitch.conf", etc_nsswitch);
        plan_etc_add(p, "etc/resolv.conf", "");
        return 0;
}

static pid_t clone_child(int cgroup_fd, bool new_netns, int *ret_pidfd)
{
        /* No CLONE_NEWNS: the child's mount namespace is a copy of the template, not of ours
         * (sandbox-mount.c), and it makes no mount in ours before it leaves it. */
        struct clone_args args = {
            .flags = CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD,
            .pidfd = (uint64_t)(uintptr_t)ret_pidfd,
            .exit_signal = SIGCHLD,
        };

        /* Without it the child joins a pooled namespace itself (child_run()). */
        if (new_netns)
                args.flags |= CLONE_NEWNET;

        /* v2: born in its cgroup, no attach (and no RCU wait) on the spawn path. */
        if (cgroup_fd >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t)cgroup_fd;
        }
        /* glibc 2.36 has no clone3() wrapper. Without CLONE_VM the child runs on its own copy
         * of our stack and returns from syscall() like from fork(). */
        return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

/* A stem cell's host side: <run_dir>/<id>, a bind mount on itself with shared propagation, so
 * that a mount on it later propagates to the sandbox's slave copy at /var/task. Its parent,
 * run_dir, is private: the cell is shared with the sandbox and nothing else. */
static int cell_make(SandboxHost *h, Sandbox *s, FnError *reterr)
{
        if (asprintf(&s->cell_dir, "%s/%s", h->run_dir, s->id) < 0) {
                s->cell_dir = NULL;
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        }
        /* 0755 whatever our umask: it is the sandbox's /var/task until code is bound on it. */
        if (mkdirat(h->run_dir_fd, s->id, 0755) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot create cell dir %s",
                                    s->cell_dir);
        s->cell_made = true;
        if (fchmodat(h->run_dir_fd, s->id, 0755, 0) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot chmod cell dir %s",
                                    s->cell_dir);
        if (mount(s->cell_dir, s->cell_dir, NULL, MS_BIND, NULL) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot bind cell dir %s",
                                    s->cell_dir);
        s->cell_mounted = true;
        if (mount(NULL, s->cell_dir, NULL, MS_SHARED, NULL) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot make cell dir %s shared",
                                    s->cell_dir);
        return 0;
}

/* Takes a pre-made network namespace from the pool, or -EBADF if it is empty. */
static int netns_take(SandboxHost *h)
{
        return h->n_netns > 0 ? h->netns[--h->n_netns] : -EBADF;
}

/* Creates the cell (stem cells), the cgroup, the socketpair and the sync pipe, then clones. */
static int spawn_child(SandboxHost *h, Sandbox *s, const SandboxSpec *spec, FnError *reterr)
{
        _cleanup_close_ int child_chan = -EBADF, sync_w = -EBADF, netns_fd = -EBADF;
        CgroupLimits lim = {.memory_bytes = spec->memory_bytes,
                            .cpu_weight = spec->cpu_weight,
                            .pids_max = spec->pids_max};
        PlanBuffers bufs;
        ChildPlan plan;
        int sv[2], pp[2], r;
        pid_t pid;

        if (s->stem) {
                r = cell_make(h, s, reterr);
                if (r < 0)
                        return r;
        }
        r = cgroup_create(h->cgroot, s->id, &lim, &s->cg, reterr);
        if (r < 0)
                return r;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return fn_error_set(reterr, negative_errno(), "socketpair failed");
        s->channel_fd = sv[0];
        child_chan = sv[1];
        if (fcntl(s->channel_fd, F_SETFL, O_NONBLOCK) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot make channel non-blocking");
        /* Non-blocking at both ends: the reader must never block (another child cloned
         * meanwhile may hold a copy of the write end for a moment), and the child writes at
         * most one small message into an empty pipe. */
        if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) < 0)
                return fn_error_set(reterr, negative_errno(), "pipe2 failed");
        s->sync_fd = pp[0];
        sync_w = pp[1];

        r = plan_build(h, s, spec, (int[]){child_chan, sync_w}, &bufs, &plan);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot prepare sandbox");
        /* Taken last, so that no failure above wastes it. One namespace, one sandbox: our copy
         * is closed on return, the child's once it has joined. */
        netns_fd = netns_take(h);
        plan.netns_fd = netns_fd;
        pid = clone_child(cgroup_dir_fd(s->cg), netns_fd < 0, &s->pidfd);
        if (pid < 0)
                return fn_error_set(reterr, negative_errno(), "clone3 failed");
        if (pid == 0)
                child_run(&plan);
        s->pid = pid;
        return 0;
}

int sandbox_spawn(SandboxHost *h, const SandboxSpec *spec, Sandbox **ret, FnError *reterr)
{
        _cleanup_(sandbox_freep) Sandbox *s = NULL;
        int r;

        r = spec_check(spec, reterr);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(*s));
        if (!s)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        s->host = h;
        s->pidfd = s->channel_fd = s->sync_fd = -EBADF;
        h->n_live++;
        s->id = strdup(spec->id);
        if (!s->id)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        s->stem = !spec->code_dir;
        s->pids_max = spec->pids_max;
        r = slot_alloc(h, &s->slot);
        if (r < 0)
                return fn_error_set(reterr, r, "all %u sandbox uids are in use", h->uid_count);
        s->have_slot = true;
        r = spawn_child(h, s, spec, reterr);
        if (r < 0)
                return r;
        log_debug("sandbox %s: pid %d, uid %u", s->id, (int)s->pid,
                  (unsigned)(h->uid_base + s->slot));
        *ret = TAKE_PTR(s);
        return 0;
}

int sandbox_channel_fd(const Sandbox *s)
{
        return s->channel_fd;
}

int sandbox_pidfd(const Sandbox *s)
{
        return s->pidfd;
}

pid_t sandbox_pid(const Sandbox *s)
{
        return s->pid;
}

const char *sandbox_id(const Sandbox *s)
{
        return s->id;
}

/* ======================================================================================== */
/* Reap, kill, free                                                                         */
/* ======================================================================================== */

static void reap_read_sync(Sandbox *s, SandboxExit *e)
{
        SandboxSyncMsg m;
        ssize_t n;

        /* The child wrote before exiting, so a message is there if there is one; EAGAIN (a
         * later child still holds a copy of the write end) means there is none. */
        n = read(s->sync_fd, &m, sizeof(m));
        if (n == (ssize_t)sizeof(m) && m.step >= 0 && m.step < _SANDBOX_STEP_MAX) {
                e->setup_failed = true;
                e->step = (SandboxStep)m.step;
                e->step_errno = m.error;
        }
}

int sandbox_reap(Sandbox *s, SandboxExit *ret)
{
        SandboxExit e = {.step = _SANDBOX_STEP_INVALID, .exit_code = -1};
        siginfo_t si = {};

        if (s->reaped) {
                *ret = s->exit;
                return 0;
        }
        if (s->pidfd < 0)
                return -ECHILD;
        if (waitid(P_PIDFD, (id_t)s->pidfd, &si, WEXITED | WNOHANG) < 0)
                return negative_errno();
        if (si.si_pid == 0)
                return -EAGAIN;
        if (si.si_code == CLD_EXITED)
                e.exit_code = si.si_status;
        else
                e.signal = si.si_status;
        reap_read_sync(s, &e);
        if (s->cg) {
                uint64_t v;
                if (cgroup_oom_kills(s->cg, &v) >= 0)
                        e.oom_killed = v > 0;
                if (cgroup_memory_peak(s->cg, &v) >= 0)
                        e.memory_peak = v;
        }
        s->reaped = true;
        s->exit = e;
        *ret = e;
        return 0;
}

int sandbox_kill(Sandbox *s)
{
        int r = 0;

        /* SIGKILL to PID 1 takes the whole pid namespace with it: the kernel stops new forks in
         * it and kills every member, and every process of the sandbox is in it. That is all a
         * kill needs, and it is one syscall; the cgroup kill (a freeze/kill/thaw round on v1,
         * about a millisecond) is kept for when PID 1 cannot be signalled. sandbox_free() still
         * kills what the cgroup holds before removing it. ESRCH: already dead. */
        /* A frozen task (v1 freezer) does not die until it is thawed: a frozen sandbox takes
         * the cgroup way, which thaws after the kill. */
        if (s->pidfd >= 0 && !s->reaped && !s->frozen) {
                if (pidfd_send_signal(s->pidfd, SIGKILL, NULL, 0) >= 0 || errno == ESRCH)
                        return 0;
                r = negative_errno();
        }
        if (s->pidfd >= 0 && !s->reaped && s->frozen)
                (void)pidfd_send_signal(s->pidfd, SIGKILL, NULL, 0);
        if (s->cg) {
                int k = cgroup_kill(s->cg);
                if (k < 0 && r == 0)
                        r = k;
        }
        return r;
}

int sandbox_memory_peak(Sandbox *s, uint64_t *ret)
{
        return s->cg ? cgroup_memory_peak(s->cg, ret) : -ENOENT;
}

int sandbox_oom_kills(Sandbox *s, uint64_t *ret)
{
        return s->cg ? cgroup_oom_kills(s->cg, ret) : -ENOENT;
}

/* ======================================================================================== */
/* Stem cells, warm instances                                                               */
/* ======================================================================================== */

int sandbox_load_code(Sandbox *s, const char *code_dir)
{
        struct mount_attr attr = {
            .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            .propagation = MS_PRIVATE,
        };
        _cleanup_close_ int fd = -EBADF;

        if (!s->stem || !code_dir || code_dir[0] != '/')
                return -EINVAL;
        if (s->code_loaded)
                return -EBUSY;
        if (!s->cell_mounted)
                return -ENOENT;
        /* Not bind + remount: the copy that propagates into the sandbox is made at bind time,
         * with the flags of the source mount (read-write, say), and a later remount changes the
         * host's copy only. So the read-only, nosuid, nodev mount is prepared detached (a
         * non-recursive clone of code_dir, private: nothing mounted under the host's code
         * directory follows it) and attached in one step; every copy takes its flags. */
        fd = open_tree(AT_FDCWD, code_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                return negative_errno();
        if (move_mount(fd, "", AT_FDCWD, s->cell_dir, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return negative_errno();
        s->code_loaded = true;
        return 0;
}

int sandbox_set_limits(Sandbox *s, uint64_t memory_bytes, uint64_t cpu_weight)
{
        CgroupLimits lim = {
            .memory_bytes = memory_bytes, .cpu_weight = cpu_weight, .pids_max = s->pids_max};
        int r;

        if (memory_bytes == 0 || cpu_weight < 1 || cpu_weight > 10000)
                return -EINVAL;
        if (!s->cg)
                return -ENOENT;
        r = cgroup_set_limits(s->cg, &lim);
        /* Fail closed: with some limits written and some not, the sandbox must not run a
         * function. The caller sees the pidfd become readable. */
        if (r < 0)
                (void)sandbox_kill(s);
        return r;
}

int sandbox_freeze(Sandbox *s, bool frozen)
{
        int r = s->cg ? cgroup_freeze(s->cg, frozen) : -ENOENT;

        if (r >= 0)
                s->frozen = frozen;
        return r;
}

int sandbox_host_set_netns_target(SandboxHost *h, unsigned target)
{
        if (target > NETNS_POOL_MAX)
                return -EINVAL;
        if (target > 0 && !h->netns) {
                /* Allocated once at the largest size, so no fd ever moves. */
                h->netns = calloc(NETNS_POOL_MAX, sizeof(int));
                if (!h->netns)
                        return -ENOMEM;
        }
        while (h->n_netns > target)
                (void)safe_close(h->netns[--h->n_netns]);
        h->netns_target = target;
        return 0;
}

int sandbox_host_refill(SandboxHost *h, unsigned max_new)
{
        unsigned made = 0;

        if (h->orig_netns_fd < 0 && h->n_netns < h->netns_target) {
                h->orig_netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
                if (h->orig_netns_fd < 0)
                        return negative_errno();
        }
        while (made < max_new && h->n_netns < h->netns_target) {
                int fd, r = sandbox_net_make(h->orig_netns_fd, &fd);

                /* Still in the new namespace: every socket the daemon made from now on would
                 * be in there. The caller must stop (see sandbox.h). */
                if (r == -ENOTRECOVERABLE)
                        return r;
                if (r < 0)
                        return made > 0 ? (int)made : r;
                h->netns[h->n_netns++] = fd;
                made++;
        }
        return (int)made;
}

unsigned sandbox_host_netns_available(const SandboxHost *h)
{
        return h->n_netns;
}

/* Kills and reaps PID 1, waiting at most SANDBOX_FREE_WAIT_MSEC. true if it is gone. */
static bool free_wait(Sandbox *s)
{
        usec_t deadline = now_usec() + SANDBOX_FREE_WAIT_MSEC * USEC_PER_MSEC;
        SandboxExit e;

        (void)sandbox_kill(s);
        for (;;) {
                struct pollfd pfd = {.fd = s->pidfd, .events = POLLIN};
                usec_t now = now_usec();
                int r;

                r = sandbox_reap(s, &e);
                if (r >= 0 || r == -ECHILD) /* ECHILD: reaped elsewhere, so gone too */
                        return true;
                if (r != -EAGAIN || now >= deadline)
                        break;
                (void)poll(&pfd, 1, (int)((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
        }
        log_debug("sandbox %s: pid %d did not exit in %d ms", s->id, (int)s->pid,
                  SANDBOX_FREE_WAIT_MSEC);
        return false;
}

/* Detaches the code and the cell's own bind (the unmount propagates to the sandbox's copy, if
 * it still exists) and removes the directory. rmdir, never a recursive removal: if a mount is
 * still there, the code under it stays untouched. */
static void cell_remove(Sandbox *s)
{
        for (int i = s->code_loaded + s->cell_mounted; i > 0; i--)
                if (umount2(s->cell_dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
                        log_debug_errno(negative_errno(), "sandbox %s: cannot unmount %s: %m",
                                        s->id, s->cell_dir);
                        return;
                }
        s->code_loaded = s->cell_mounted = false;
        if (s->cell_made && unlinkat(s->host->run_dir_fd, s->id, AT_REMOVEDIR) < 0)
                log_debug_errno(negative_errno(), "sandbox %s: cannot remove %s: %m", s->id,
                                s->cell_dir);
        s->cell_made = false;
}

Sandbox *sandbox_free(Sandbox *s)
{
        bool gone = true;
        int r;

        if (!s)
                return NULL;
        if (s->pid > 0 && !s->reaped)
                gone = free_wait(s);
        if (s->cg) {
                r = cgroup_destroy(s->cg);
                if (r == -EBUSY) {
                        /* Something is still in the group: kill it the cgroup way, then again. */
                        (void)cgroup_kill(s->cg);
                        r = cgroup_destroy(s->cg);
                }
                if (r < 0)
                        log_debug_errno(r, "sandbox %s: cannot remove cgroup, ignoring: %m", s->id);
                s->cg = cgroup_free(s->cg);
        }
        cell_remove(s);
        s->pidfd = safe_close(s->pidfd);
        s->channel_fd = safe_close(s->channel_fd);
        s->sync_fd = safe_close(s->sync_fd);
        /* A uid whose processes may still be alive is never handed out again. */
        if (s->have_slot && gone)
                s->host->slot_used[s->slot] = 0;
        s->host->n_live--;
        free(s->cell_dir);
        free(s->id);
        free(s);
        return NULL;
}
