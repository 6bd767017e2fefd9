/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

/* Test hooks of the cgroup backend (daemon/sandbox-cgroup.c), for tests/unit/test-cgroup.c only;
 * not part of the module's contract (sandbox-cgroup.h), and nothing else may call them.
 *
 * A fake cgroupfs is a plain directory tree, where mkdir creates no control files and rmdir fails
 * on a non-empty directory. The backend tells one from a real cgroupfs by statfs (CgroupRoot.fake),
 * so these hooks never act on a real hierarchy. */

/* Runs after each group directory the backend creates on a fake tree (created=true), so the test
 * can create the files the kernel would, and before each rmdir (created=false), so it can remove
 * them as the kernel would. The backend itself never creates control files: it writes to existing
 * files only, as on a real cgroupfs. NULL removes the hook. */
typedef void (*CgroupFakeTreeHook)(const char *dir, bool created);
void cgroup_set_fake_tree_hook(CgroupFakeTreeHook hook);

/* The cgroup the daemon is taken to be in on a fake v2 tree, as the "0::" line of /proc/self/cgroup
 * would say on a real one: an absolute path below the mount root, e.g.
 * "/system.slice/fnboxd.service". NULL (the default) means the root "/". The string is copied.
 * Returns 0, or -EINVAL if path does not start with '/', -ENAMETOOLONG if it is too long. */
int cgroup_set_fake_self_cgroup(const char *path);
