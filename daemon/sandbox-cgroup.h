/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "macro.h"

/* cgroups behind one interface, two backends (DESIGN.md decision 3).
 * v1: one directory per controller (memory, cpu, pids, freezer) under
 *     <mount_root>/<controller>/<parent>/<name>.
 * v2: one directory <mount_root>/<base>/<parent>/<name> with memory, cpu and pids enabled in the
 *     parent's cgroup.subtree_control; <base> is the cgroup the daemon runs in.
 * All functions here do blocking filesystem I/O on cgroupfs (fast) and may be called only from the
 * daemon's main thread. They never log above debug. */

typedef enum CgroupVersion {
        CGROUP_V1,
        CGROUP_V2,
        _CGROUP_VERSION_MAX,
        _CGROUP_VERSION_INVALID = -EINVAL,
} CgroupVersion;

typedef struct CgroupLimits {
        uint64_t memory_bytes; /* hard limit; swap is limited to 0 where the kernel allows */
        uint64_t cpu_weight;   /* v2 cpu.weight scale 1..10000 (v1 shares = weight*1024/100) */
        uint64_t pids_max;     /* tasks in the group, a fork bomb stops here */
} CgroupLimits;

/* CPU weight proportional to memory, as Lambda does: 1769 MB is one full vCPU (weight 100). */
uint64_t cgroup_cpu_weight_for_memory(uint64_t memory_mb);

typedef struct CgroupRoot CgroupRoot;
typedef struct Cgroup Cgroup;

/* Detects the hierarchy under mount_root ("/sys/fs/cgroup", or a fake tree in tests) and creates
 * the parent group(s) named parent (e.g. "fnbox"). Detection: v2 if mount_root/cgroup.controllers
 * exists and lists "memory"; else v1 if mount_root/memory/memory.limit_in_bytes exists; else
 * -EOPNOTSUPP with a message. On v2 the parent is created below base, the cgroup the daemon is in
 * (from /proc/self/cgroup), and memory, cpu and pids are enabled in both their subtree_control;
 * base must have the three in its cgroup.controllers (-EOPNOTSUPP naming the missing ones).
 * Unless base is the root group, the "no internal processes" rule applies to it, so first every
 * process of base (the daemon, and whatever else is there, e.g. the shell that started it) is
 * moved to the leaf <base>/<parent>-daemon; base is taken to be the delegated subtree of the
 * daemon (systemd Delegate=yes). A daemon started inside that leaf uses the leaf's parent as
 * base. */
int cgroup_root_open(const char *mount_root, const char *parent, CgroupRoot **ret, FnError *reterr);
CgroupRoot *cgroup_root_free(CgroupRoot *root);
DEFINE_CLEANUP_FUNC(CgroupRoot *, cgroup_root_free);
CgroupVersion cgroup_root_version(const CgroupRoot *root);
/* Removes leftover child groups of the parent from an earlier run (after killing their tasks). */
int cgroup_root_cleanup_stale(CgroupRoot *root);

/* Creates group name (a [A-Za-z0-9_-] string) under the parent and writes the limits.
 * Fails closed: any limit that cannot be written removes the group and returns the error. */
int cgroup_create(CgroupRoot *root, const char *name, const CgroupLimits *lim, Cgroup **ret,
                  FnError *reterr);

/* v1: NULL-terminated array of absolute paths of the group's cgroup.procs files, one per
 * controller; a child process writes "0" into each to join (no allocation needed in the child).
 * v2: also the one cgroup.procs path (used when CLONE_INTO_CGROUP is unavailable).
 * Owned by cg. */
const char *const *cgroup_procs_paths(const Cgroup *cg);
/* v2: an O_PATH|O_DIRECTORY fd of the group for clone3(CLONE_INTO_CGROUP); v1: -EBADF.
 * Owned by cg. */
int cgroup_dir_fd(const Cgroup *cg);

/* Rewrites the limits of an existing group (specializing a stem cell): only the values that
 * differ from what the group holds are written; on v1 the memory and memory+swap limits are
 * written in the order the kernel accepts (memsw >= memory at every moment). -EINVAL (nothing
 * written) for limits cgroup_create would refuse. On a write error the group may hold a mix of
 * old and new values: the caller must not run code in it (kill it). */
int cgroup_set_limits(Cgroup *cg, const CgroupLimits *lim);

/* Freezes (true) or thaws (false) every task of the group: v1 freezer.state FROZEN/THAWED, v2
 * cgroup.freeze 1/0. Waits, bounded (100 ms), until the kernel reports the new state (v1
 * freezer.state reads FROZEN/THAWED, v2 cgroup.events says "frozen 1"/"frozen 0"); a freeze that
 * does not complete in time is undone (the group is thawed again) and fails with -ETIMEDOUT.
 * Blocks for at most that long. */
int cgroup_freeze(Cgroup *cg, bool frozen);

/* Kills every task in the group: v2 writes "1" to cgroup.kill (falls back to SIGKILL of each
 * pid in cgroup.procs); v1 freezes the group, SIGKILLs each task listed in tasks, and thaws it.
 * Idempotent. Does not wait for the tasks to die. */
int cgroup_kill(Cgroup *cg);
/* Number of OOM kills in the group so far (v1: memory.oom_control "oom_kill"; v2: memory.events
 * "oom_kill"). */
int cgroup_oom_kills(Cgroup *cg, uint64_t *ret);
/* Peak memory use in bytes (v1: memory.max_usage_in_bytes; v2: memory.peak, or memory.current
 * where memory.peak is missing). */
int cgroup_memory_peak(Cgroup *cg, uint64_t *ret);
/* Current number of tasks (pids.current). */
int cgroup_pids_current(Cgroup *cg, uint64_t *ret);

/* rmdir of the group's directories; retries briefly (<= 100 ms) while the kernel still reports
 * EBUSY for exiting tasks. Returns -EBUSY if tasks remain. */
int cgroup_destroy(Cgroup *cg);
/* Frees the handle (does not rmdir). */
Cgroup *cgroup_free(Cgroup *cg);
DEFINE_CLEANUP_FUNC(Cgroup *, cgroup_free);
