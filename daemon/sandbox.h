/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "macro.h"

/* The sandbox mechanism (DESIGN.md decision 2): clone3 into new pid, mount, network, UTS, IPC
 * and cgroup namespaces, cgroup limits, a read-only root, /var/task, /tmp, /proc, /dev, then
 * setsid, rlimits, an unprivileged uid/gid, no capabilities, no_new_privs and seccomp, and finally
 * exec of fnbox-agent as PID 1 with the channel on fd 3. Knows nothing of HTTP, pools or
 * functions. Only the daemon's main thread calls these, and the daemon has no other threads. */

typedef struct SandboxHostConfig {
        const char *agent_path;    /* host path of the fnbox-agent binary */
        const char *run_dir;       /* daemon-private directory for per-sandbox mount points */
        const char *cgroup_root;   /* "/sys/fs/cgroup" (tests may point at a fake tree) */
        const char *cgroup_parent; /* "fnbox" */
        const char *runtime_dir;   /* host dir bound read-only at /var/runtime, or NULL */
        uid_t uid_base;            /* sandbox uids/gids are uid_base + slot, slot < uid_count */
        uint32_t uid_count;
} SandboxHostConfig;

typedef struct SandboxHost SandboxHost;

/* Opens the agent binary, detects cgroups, builds the seccomp BPF program, the empty
 * capability set and the template mount namespace every sandbox's root is copied from (in a
 * forked helper: the caller must be single-threaded; ~1 ms) once. Makes run_dir a private bind
 * mount on itself (undone by sandbox_host_free) so that stem cells' mounts stay out of other
 * mount namespaces. Fails with a message naming what the host lacks. */
int sandbox_host_new(const SandboxHostConfig *cfg, SandboxHost **ret, FnError *reterr);
SandboxHost *sandbox_host_free(SandboxHost *h);
DEFINE_CLEANUP_FUNC(SandboxHost *, sandbox_host_free);
/* Removes what an earlier daemon left: stale cgroups, per-sandbox run dirs. */
int sandbox_host_cleanup_stale(SandboxHost *h);
/* "v1" or "v2". */
const char *sandbox_host_cgroup_version(const SandboxHost *h);

typedef struct SandboxSpec {
        const char *id;        /* unique, [A-Za-z0-9_-]{1,64}; names the cgroup and run dir */
        const char *code_dir;  /* host directory bound read-only at /var/task; NULL: stem cell */
        uint64_t memory_bytes; /* cgroup memory limit */
        uint64_t cpu_weight;   /* see CgroupLimits */
        uint64_t pids_max;     /* cgroup pids limit */
        uint64_t tmp_bytes;    /* size of the /tmp tmpfs */
        uint64_t tmp_inodes;   /* inode count of the /tmp tmpfs */
        uint64_t nofile;       /* RLIMIT_NOFILE for the agent and function */
} SandboxSpec;

/* The step names a failing child reports, in the order they run. */
typedef enum SandboxStep {
        SANDBOX_STEP_CGROUP,
        SANDBOX_STEP_FDS,
        SANDBOX_STEP_MOUNT_PRIVATE,
        SANDBOX_STEP_ROOT,
        SANDBOX_STEP_TASK,
        SANDBOX_STEP_TMP,
        SANDBOX_STEP_PROC,
        SANDBOX_STEP_DEV,
        SANDBOX_STEP_PIVOT_ROOT,
        SANDBOX_STEP_NETWORK,
        SANDBOX_STEP_HOSTNAME,
        SANDBOX_STEP_SETSID,
        SANDBOX_STEP_RLIMITS,
        SANDBOX_STEP_IDS,
        SANDBOX_STEP_CAPS,
        SANDBOX_STEP_NO_NEW_PRIVS,
        SANDBOX_STEP_SECCOMP,
        SANDBOX_STEP_EXEC,
        _SANDBOX_STEP_MAX,
        _SANDBOX_STEP_INVALID = -EINVAL,
} SandboxStep;
const char *sandbox_step_to_string(SandboxStep s);

typedef struct Sandbox Sandbox;

/* Creates the cgroup and clones the sandbox child, which sets itself up and execs the agent.
 * Returns as soon as the child is cloned (it does not wait for the agent). The daemon end of
 * the channel (SOCK_SEQPACKET, non-blocking, CLOEXEC) is sandbox_channel_fd(); the agent sends
 * Ready on it when up. If the child fails a setup step it exits; the pidfd becomes readable and
 * sandbox_reap() reports the step and errno. Blocks only on cgroupfs writes and clone3. */
int sandbox_spawn(SandboxHost *h, const SandboxSpec *spec, Sandbox **ret, FnError *reterr);

int sandbox_channel_fd(const Sandbox *s);
int sandbox_pidfd(const Sandbox *s);
pid_t sandbox_pid(const Sandbox *s);
const char *sandbox_id(const Sandbox *s);

typedef struct SandboxExit {
        bool setup_failed;    /* the child failed a setup step before exec */
        SandboxStep step;     /* valid if setup_failed */
        int step_errno;       /* valid if setup_failed (positive errno) */
        int exit_code;        /* -1 unless PID 1 exited normally */
        int signal;           /* 0 unless PID 1 was killed by a signal */
        bool oom_killed;      /* the cgroup recorded an OOM kill */
        uint64_t memory_peak; /* bytes */
} SandboxExit;

/* Call once the pidfd is readable: reaps PID 1 (non-blocking; -EAGAIN if it has not exited yet)
 * and fills ret. */
int sandbox_reap(Sandbox *s, SandboxExit *ret);

/* Kills every process of the sandbox (cgroup kill plus SIGKILL to PID 1 through the pidfd).
 * Idempotent, does not wait. */
int sandbox_kill(Sandbox *s);

/* Peak memory of the sandbox so far, in bytes; OOM kills so far. */
int sandbox_memory_peak(Sandbox *s, uint64_t *ret);
int sandbox_oom_kills(Sandbox *s, uint64_t *ret);

/* ---- stem cells, warm instances (DESIGN.md decision 5) ---- */

/* A spec whose code_dir is NULL makes a stem cell: /var/task is an empty read-only mount point
 * that is a slave of a per-cell host directory with shared propagation, so that
 * sandbox_load_code() can later bring code in with one host-side mount. */

/* Binds code_dir read-only (nosuid, nodev) onto the cell's host-side mount point; it appears at
 * /var/task inside the sandbox at once. -EBUSY if code is already loaded, -EINVAL for a sandbox
 * spawned with a code_dir. Blocking (one or two mount calls). */
int sandbox_load_code(Sandbox *s, const char *code_dir);

/* Rewrites the cgroup's memory limit and CPU weight (specializing a stem cell for a function);
 * pids_max stays as spawned. -EINVAL (nothing changed) for a memory limit of 0 or a weight
 * outside 1..10000. Fails closed: if a write fails, the sandbox is killed (its pidfd becomes
 * readable) and the error returned. */
int sandbox_set_limits(Sandbox *s, uint64_t memory_bytes, uint64_t cpu_weight);

/* Freezes (true) or thaws (false) every process of the sandbox (v1 freezer.state, v2
 * cgroup.freeze). Waits, bounded (100 ms), until the kernel reports the new state; a freeze that
 * does not complete in time is undone and fails with -ETIMEDOUT. A frozen sandbox can still be
 * killed and freed. */
int sandbox_freeze(Sandbox *s, bool frozen);

/* Pre-made empty network namespaces (loopback up), so a spawn joins one with setns() instead of
 * paying for a new one on the request path. sandbox_host_refill() tops the pool up to `target`
 * namespaces, at most max_new of them per call (made by briefly unsharing the daemon's own
 * network namespace and switching back; ~0.4-0.5 ms each); call it off the request path.
 * Returns the number made (an error only if none was made). -ENOTRECOVERABLE means the daemon
 * could not switch back to its own network namespace: it is still in the new one, and must exit
 * at once (every socket it made from now on would be in there). Spawns fall back to
 * CLONE_NEWNET when the pool is empty. set_netns_target: -EINVAL above 4096; lowering the target
 * frees the namespaces above it. */
int sandbox_host_set_netns_target(SandboxHost *h, unsigned target);
int sandbox_host_refill(SandboxHost *h, unsigned max_new);
unsigned sandbox_host_netns_available(const SandboxHost *h);

/* Kills it if alive, waits for PID 1 (bounded: the kill is synchronous in practice; gives up
 * after 2 s and logs at debug), removes the cgroup and the run dir, closes every fd.
 * Accepts NULL. Returns NULL. */
Sandbox *sandbox_free(Sandbox *s);
DEFINE_CLEANUP_FUNC(Sandbox *, sandbox_free);
