/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox-cgroup.h"
#include "sandbox-cgroup-test.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* Bounds on blocking loops: cgroupfs answers in microseconds, the kernel needs a little longer
 * to freeze a group or to let killed tasks exit before their group can be removed. */
#define FREEZE_TIMEOUT_USEC (100 * USEC_PER_MSEC)
#define RMDIR_BUSY_TIMEOUT_USEC (100 * USEC_PER_MSEC)
#define POLL_INTERVAL_USEC (1 * USEC_PER_MSEC)
/* Largest control file we read: "tasks" of a group holding pids.max tasks, and then some. */
#define CONTROL_FILE_MAX ((size_t)1024 * 1024)
/* Stale groups handled per cleanup_stale() call; more than any pool holds. */
#define STALE_GROUPS_MAX 65536

/* v1 has one hierarchy per controller, v2 uses only the first entry (CTRL_MEMORY). */
enum {
        CTRL_MEMORY,
        CTRL_CPU,
        CTRL_PIDS,
        CTRL_FREEZER,
        _CTRL_MAX,
};

static const char *const ctrl_names[_CTRL_MAX] = {
    [CTRL_MEMORY] = "memory",
    [CTRL_CPU] = "cpu",
    [CTRL_PIDS] = "pids",
    [CTRL_FREEZER] = "freezer",
};

/* The v2 controllers a sandbox group needs, enabled in subtree_control of base and parent. */
static const char *const v2_controllers[] = {"memory", "cpu", "pids"};
/* v2, daemon not in the root group: the leaf <base>/<parent>-daemon its processes move to. */
#define V2_LEAF_SUFFIX "-daemon"
/* v2: rounds of moving base's processes to the leaf before giving up on enabling controllers. */
#define V2_MOVE_ROUNDS 8

struct CgroupRoot {
        CgroupVersion version;
        bool fake;                    /* not a cgroupfs: a test tree, see the fake-tree hook */
        char *parent_dirs[_CTRL_MAX]; /* v1: one per controller; v2: [0] */
        size_t n_dirs;
};

struct Cgroup {
        CgroupVersion version;
        bool fake;
        char *dirs[_CTRL_MAX]; /* v1: one per controller; v2: [0] */
        size_t n_dirs;
        char *procs[_CTRL_MAX + 1]; /* cgroup.procs of each dir, NULL-terminated */
        int dir_fd;                 /* v2: O_PATH fd of dirs[0]; v1: -EBADF */
        int peak_fd;                /* the peak-memory file, opened on first use */
        CgroupLimits lim;           /* what the group's limit files hold (all 0: unknown) */
};

/* Test hooks, declared in sandbox-cgroup-test.h; they act on fake trees only. */
static CgroupFakeTreeHook fake_tree_hook;
/* cgroup_set_fake_self_cgroup(); empty means the root. */
static char fake_self_cgroup[PATH_MAX];

void cgroup_set_fake_tree_hook(CgroupFakeTreeHook hook)
{
        fake_tree_hook = hook;
}

int cgroup_set_fake_self_cgroup(const char *path)
{
        if (!path) {
                fake_self_cgroup[0] = '\0';
                return 0;
        }
        if (path[0] != '/')
                return -EINVAL;
        if (strlen(path) >= sizeof(fake_self_cgroup))
                return -ENAMETOOLONG;
        strcpy(fake_self_cgroup, path);
        return 0;
}

static void fake_tree_notify(bool fake, const char *dir, bool created)
{
        if (fake && fake_tree_hook)
                fake_tree_hook(dir, created);
}

uint64_t cgroup_cpu_weight_for_memory(uint64_t memory_mb)
{
        uint64_t w;

        if (memory_mb > UINT64_MAX / 100)
                return 10000;
        w = memory_mb * 100 / 1769;
        return MIN(MAX(w, (uint64_t)1), (uint64_t)10000);
}

static int path_join(char *buf, size_t size, const char *dir, const char *file)
{
        int n = snprintf(buf, size, "%s/%s", dir, file);
        if (n < 0 || (size_t)n >= size)
                return -ENAMETOOLONG;
        return 0;
}

static char *path_join_alloc(const char *dir, const char *file)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, file) < 0)
                return NULL;
        return p;
}

static int file_write(const char *dir, const char *file, const char *value)
{
        char p[PATH_MAX];
        int r = path_join(p, sizeof(p), dir, file);
        if (r < 0)
                return r;
        return write_string_file(p, value);
}

static int file_read(const char *dir, const char *file, char **ret)
{
        char p[PATH_MAX];
        int r = path_join(p, sizeof(p), dir, file);
        if (r < 0)
                return r;
        return read_file_at(AT_FDCWD, p, CONTROL_FILE_MAX, ret, NULL);
}

static bool file_exists(const char *dir, const char *file)
{
        char p[PATH_MAX];
        if (path_join(p, sizeof(p), dir, file) < 0)
                return false;
        return access(p, F_OK) >= 0;
}

static void strip_newline(char *s)
{
        size_t l = strlen(s);
        while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == ' '))
                s[--l] = '\0';
}

static int file_read_uint64(const char *dir, const char *file, uint64_t *ret)
{
        _cleanup_free_ char *s = NULL;
        int r = file_read(dir, file, &s);
        if (r < 0)
                return r;
        strip_newline(s);
        return parse_uint64(s, ret);
}

/* Finds the line "<key> <number>" in a flat-keyed file (memory.events, memory.oom_control). */
static int parse_keyed(const char *text, const char *key, uint64_t *ret)
{
        size_t kl = strlen(key);

        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t ll = eol ? (size_t)(eol - line) : strlen(line);

                if (ll > kl && strncmp(line, key, kl) == 0 && line[kl] == ' ') {
                        char num[32];
                        size_t nl = ll - kl - 1;
                        if (nl == 0 || nl >= sizeof(num))
                                return -EINVAL;
                        memcpy(num, line + kl + 1, nl);
                        num[nl] = '\0';
                        return parse_uint64(num, ret);
                }
                line = eol ? eol + 1 : NULL;
        }
        return -ENODATA;
}

static bool word_in_list(const char *list, const char *word)
{
        size_t wl = strlen(word);

        for (const char *p = list; *p;) {
                size_t n;
                p += strspn(p, " \t\n");
                n = strcspn(p, " \t\n");
                if (n == wl && strncmp(p, word, wl) == 0)
                        return true;
                p += n;
        }
        return false;
}

static bool is_fs_type(const char *path, long magic)
{
        struct statfs sfs;
        return statfs(path, &sfs) >= 0 && (long)sfs.f_type == magic;
}

static int sleep_usec(usec_t usec)
{
        struct timespec ts = {.tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_nsec = (long)(usec % USEC_PER_SEC * NSEC_PER_USEC)};
        return RET_NERRNO(nanosleep(&ts, NULL));
}

/* mkdir for parents: an existing one is fine (a restart, or a pre-made delegated group). */
static int make_dir(bool fake, const char *path)
{
        if (mkdir(path, 0755) < 0)
                return errno == EEXIST ? 0 : negative_errno();
        fake_tree_notify(fake, path, true);
        return 0;
}

/* rmdir, retrying while the kernel still holds the group for exiting tasks. */
static int rmdir_retry(bool fake, const char *dir, usec_t deadline)
{
        fake_tree_notify(fake, dir, false);
        for (;;) {
                int e;
                if (rmdir(dir) >= 0 || errno == ENOENT)
                        return 0;
                e = errno;
                if (e != EBUSY || now_usec() >= deadline)
                        return -e;
                (void)sleep_usec(POLL_INTERVAL_USEC);
        }
}

CgroupRoot *cgroup_root_free(CgroupRoot *root)
{
        if (!root)
                return NULL;
        for (size_t i = 0; i < _CTRL_MAX; i++)
                free(root->parent_dirs[i]);
        free(root);
        return NULL;
}

CgroupVersion cgroup_root_version(const CgroupRoot *root)
{
        return root ? root->version : _CGROUP_VERSION_INVALID;
}

static int root_open_v1(CgroupRoot *root, const char *mount_root, const char *parent,
                        FnError *reterr)
{
        char hier[PATH_MAX];
        int r;

        r = path_join(hier, sizeof(hier), mount_root, "memory");
        if (r < 0)
                return fn_error_set(reterr, r, "cgroup path too long");
        root->version = CGROUP_V1;
        root->fake = !is_fs_type(hier, CGROUP_SUPER_MAGIC);
        root->n_dirs = _CTRL_MAX;
        for (size_t c = 0; c < _CTRL_MAX; c++) {
                r = path_join(hier, sizeof(hier), mount_root, ctrl_names[c]);
                if (r < 0)
                        return fn_error_set(reterr, r, "cgroup path too long");
                if (!file_exists(hier, "cgroup.procs"))
                        return fn_error_set(reterr, -EOPNOTSUPP,
                                            "cgroup v1 controller '%s' is not mounted at %s",
                                            ctrl_names[c], hier);
                root->parent_dirs[c] = path_join_alloc(hier, parent);
                if (!root->parent_dirs[c])
                        return -ENOMEM;
                r = make_dir(root->fake, root->parent_dirs[c]);
                if (r < 0)
                        return fn_error_set(reterr, r, "cannot create cgroup %s: %s",
                                            root->parent_dirs[c], strerror(-r));
        }
        return 0;
}

/* The daemon's own v2 cgroup ("0::/path" in /proc/self/cgroup), relative to the mount; on a fake
 * tree the one set with cgroup_set_fake_self_cgroup(), or "/". */
static int v2_self_cgroup(bool fake, char **ret)
{
        _cleanup_free_ char *s = NULL;
        const char *p;
        size_t l;
        char *b;
        int r;

        if (fake)
                p = fake_self_cgroup[0] ? fake_self_cgroup : "/";
        else {
                r = read_file_at(AT_FDCWD, "/proc/self/cgroup", (size_t)64 * 1024, &s, NULL);
                if (r < 0)
                        return r;
                if (strncmp(s, "0::", 3) == 0)
                        p = s + 3;
                else if ((p = strstr(s, "\n0::")))
                        p += 4;
                else
                        return -ENODATA;
        }
        if (*p != '/')
                return -EINVAL;
        l = strcspn(p, "\n");
        while (l > 1 && p[l - 1] == '/')
                l--;
        b = strndup(p, l);
        if (!b)
                return -ENOMEM;
        *ret = b;
        return 0;
}

/* A daemon started from inside the leaf an earlier run made (from a shell that run moved there)
 * takes the leaf's parent as its base, instead of nesting a new leaf in the old one. */
static void v2_strip_own_leaf(char *base, const char *parent)
{
        char *slash = strrchr(base, '/');
        size_t pl = strlen(parent);

        if (strncmp(slash + 1, parent, pl) != 0 || strcmp(slash + 1 + pl, V2_LEAF_SUFFIX) != 0)
                return;
        if (slash == base)
                slash[1] = '\0';
        else
                *slash = '\0';
}

/* memory, cpu and pids must be available to base (listed in its cgroup.controllers), which is
 * what its parent delegates; base cannot enable them for itself. */
static int v2_check_controllers(const char *base_dir, FnError *reterr)
{
        _cleanup_free_ char *controllers = NULL;
        char missing[64] = "";
        size_t n = 0;
        int r;

        r = file_read(base_dir, "cgroup.controllers", &controllers);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot read %s/cgroup.controllers: %s", base_dir,
                                    strerror(-r));
        for (size_t i = 0; i < ELEMENTSOF(v2_controllers); i++) {
                if (word_in_list(controllers, v2_controllers[i]))
                        continue;
                /* Cannot truncate: three short names fit in missing. */
                n += (size_t)snprintf(missing + n, sizeof(missing) - n, "%s'%s'", n > 0 ? " " : "",
                                      v2_controllers[i]);
        }
        if (n == 0)
                return 0;
        return fn_error_set(reterr, -EOPNOTSUPP,
                            "cgroup v2 controllers %s not available in %s: fnboxd's cgroup "
                            "needs memory, cpu and pids delegated (Delegate=yes in its systemd "
                            "unit)",
                            missing, base_dir);
}

/* Moves every process of base into leaf: the daemon first ("0" names the writer), then any other
 * that base holds (a shell that started the daemon, say), one pid per write(), which is how
 * cgroupfs takes them. A process that exited meanwhile (ESRCH) needs no move. */
static int v2_move_procs(const char *base_dir, const char *leaf, FnError *reterr)
{
        _cleanup_free_ char *procs = NULL;
        _cleanup_close_ int fd = -EBADF;
        char path[PATH_MAX], *save = NULL;
        int r;

        r = path_join(path, sizeof(path), leaf, "cgroup.procs");
        if (r < 0)
                return fn_error_set(reterr, r, "cgroup path too long");
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                return fn_error_set(reterr, r, "cannot move fnboxd into %s: %s", leaf,
                                    strerror(-r));
        }
        r = loop_write(fd, "0\n", 2);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot move fnboxd into %s: %s", leaf,
                                    strerror(-r));

        r = file_read(base_dir, "cgroup.procs", &procs);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot read %s/cgroup.procs: %s", base_dir,
                                    strerror(-r));
        for (char *tok = strtok_r(procs, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
                char line[32];
                uint64_t pid;

                /* 0 is how a process of another pid namespace is listed: it cannot be named, and
                 * the final subtree_control write reports it. Ourselves moved above. */
                if (parse_uint64(tok, &pid) < 0 || pid == 0 || pid > INT_MAX ||
                    (pid_t)pid == getpid())
                        continue;
                (void)snprintf(line, sizeof(line), "%" PRIu64 "\n", pid);
                r = loop_write(fd, line, strlen(line));
                if (r == -ESRCH)
                        continue;
                if (r < 0)
                        return fn_error_set(reterr, r,
                                            "cannot move process %" PRIu64 " from %s to %s: %s; "
                                            "fnboxd needs a cgroup of its own (Delegate=yes)",
                                            pid, base_dir, leaf, strerror(-r));
        }
        return 0;
}

/* Enables what is missing of memory, cpu and pids in dir's subtree_control. Writing only what is
 * missing matters: a non-root group with processes refuses any subtree_control write (EBUSY, the
 * "no internal processes" rule), even one that would change nothing. */
static int v2_enable_controllers(const char *dir, FnError *reterr)
{
        _cleanup_free_ char *cur = NULL;
        char want[64] = "";
        size_t n = 0;
        int r;

        r = file_read(dir, "cgroup.subtree_control", &cur);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot read %s/cgroup.subtree_control: %s", dir,
                                    strerror(-r));
        for (size_t i = 0; i < ELEMENTSOF(v2_controllers); i++) {
                if (word_in_list(cur, v2_controllers[i]))
                        continue;
                /* Cannot truncate: three short names fit in want. */
                n += (size_t)snprintf(want + n, sizeof(want) - n, "%s+%s", n > 0 ? " " : "",
                                      v2_controllers[i]);
        }
        if (n == 0)
                return 0;
        r = file_write(dir, "cgroup.subtree_control", want);
        if (r == -EBUSY)
                return fn_error_set(reterr, r,
                                    "cannot enable controllers in %s: the group has processes of "
                                    "its own (cgroup v2 \"no internal processes\" rule)",
                                    dir);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot write %s/cgroup.subtree_control: %s", dir,
                                    strerror(-r));
        return 0;
}

/* Makes base, a non-root group the daemon is in, able to hold the sandboxes' parent: the "no
 * internal processes" rule lets a non-root group enable controllers for its children only while
 * it has no processes of its own, so they all go to the leaf <base>/<parent>-daemon first (as
 * systemd and crun do with a delegated subtree, which is ours to arrange). */
static int v2_delegate(bool fake, const char *base_dir, const char *parent, FnError *reterr)
{
        _cleanup_free_ char *leaf = NULL;
        int r;

        if (asprintf(&leaf, "%s/%s" V2_LEAF_SUFFIX, base_dir, parent) < 0)
                return -ENOMEM;
        r = make_dir(fake, leaf);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot create cgroup %s: %s", leaf, strerror(-r));
        for (unsigned round = 1;; round++) {
                r = v2_move_procs(base_dir, leaf, reterr);
                if (r < 0)
                        return r;
                r = v2_enable_controllers(base_dir, reterr);
                if (r != -EBUSY)
                        return r;
                /* A process that forked between the read of cgroup.procs and its move left a
                 * child in base: another round moves it. */
                if (round == V2_MOVE_ROUNDS)
                        return fn_error_set(reterr, r,
                                            "cannot enable controllers in %s: processes remain "
                                            "in it that could not be moved to %s (from another "
                                            "pid namespace, or forking)",
                                            base_dir, leaf);
        }
}

static int root_open_v2(CgroupRoot *root, const char *mount_root, const char *parent,
                        FnError *reterr)
{
        _cleanup_free_ char *base = NULL, *base_dir = NULL;
        bool at_root;
        int r;

        root->version = CGROUP_V2;
        root->n_dirs = 1;
        root->fake = !is_fs_type(mount_root, CGROUP2_SUPER_MAGIC);
        r = v2_self_cgroup(root->fake, &base);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot find own cgroup in /proc/self/cgroup");
        v2_strip_own_leaf(base, parent);
        if (strcmp(base, "/") == 0)
                base_dir = strdup(mount_root);
        else if (asprintf(&base_dir, "%s%s", mount_root, base) < 0)
                base_dir = NULL;
        if (!base_dir)
                return -ENOMEM;

        /* Checked before anything is created or moved. */
        r = v2_check_controllers(base_dir, reterr);
        if (r < 0)
                return r;
        /* Only the root group may have processes and enable controllers at once. The root of a
         * cgroup namespace (a container) reads as "/" but is an ordinary group: it has
         * cgroup.type, which the real root lacks. */
        at_root = strcmp(base, "/") == 0 && !file_exists(base_dir, "cgroup.type");
        r = at_root ? v2_enable_controllers(base_dir, reterr)
                    : v2_delegate(root->fake, base_dir, parent, reterr);
        if (r < 0)
                return r;

        root->parent_dirs[0] = path_join_alloc(base_dir, parent);
        if (!root->parent_dirs[0])
                return -ENOMEM;
        r = make_dir(root->fake, root->parent_dirs[0]);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot create cgroup %s: %s", root->parent_dirs[0],
                                    strerror(-r));
        return v2_enable_controllers(root->parent_dirs[0], reterr);
}

int cgroup_root_open(const char *mount_root, const char *parent, CgroupRoot **ret, FnError *reterr)
{
        _cleanup_(cgroup_root_freep) CgroupRoot *root = NULL;
        _cleanup_free_ char *controllers = NULL;
        int r;

        if (!mount_root || !parent || !name_is_valid(parent))
                return fn_error_set(reterr, -EINVAL, "invalid cgroup parent name");
        root = calloc(1, sizeof(*root));
        if (!root)
                return -ENOMEM;

        if (file_read(mount_root, "cgroup.controllers", &controllers) >= 0 &&
            word_in_list(controllers, "memory"))
                r = root_open_v2(root, mount_root, parent, reterr);
        else if (file_exists(mount_root, "memory/memory.limit_in_bytes"))
                r = root_open_v1(root, mount_root, parent, reterr);
        else
                r = fn_error_set(reterr, -EOPNOTSUPP,
                                 "no usable cgroup hierarchy at %s: neither cgroup v2 with the "
                                 "memory controller nor a cgroup v1 memory controller",
                                 mount_root);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(root);
        return 0;
}

Cgroup *cgroup_free(Cgroup *cg)
{
        if (!cg)
                return NULL;
        (void)safe_close(cg->dir_fd);
        (void)safe_close(cg->peak_fd);
        for (size_t i = 0; i < _CTRL_MAX; i++) {
                free(cg->dirs[i]);
                free(cg->procs[i]);
        }
        free(cg);
        return NULL;
}

/* The handle of group name below the parent(s), without touching the filesystem. */
static int cg_new(const CgroupRoot *root, const char *name, Cgroup **ret)
{
        _cleanup_(cgroup_freep) Cgroup *cg = calloc(1, sizeof(Cgroup));

        if (!cg)
                return -ENOMEM;
        cg->dir_fd = -EBADF;
        cg->peak_fd = -EBADF;
        cg->version = root->version;
        cg->fake = root->fake;
        cg->n_dirs = root->n_dirs;
        for (size_t i = 0; i < cg->n_dirs; i++) {
                cg->dirs[i] = path_join_alloc(root->parent_dirs[i], name);
                if (!cg->dirs[i])
                        return -ENOMEM;
                cg->procs[i] = path_join_alloc(cg->dirs[i], "cgroup.procs");
                if (!cg->procs[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(cg);
        return 0;
}

static const char *cg_dir(const Cgroup *cg, int ctrl)
{
        return cg->version == CGROUP_V1 ? cg->dirs[ctrl] : cg->dirs[0];
}

/* Removes the first n directories of cg, last first. */
static int cg_remove_dirs(Cgroup *cg, size_t n)
{
        usec_t deadline = now_usec() + RMDIR_BUSY_TIMEOUT_USEC;
        int ret = 0;

        for (size_t i = n; i-- > 0;) {
                int r = rmdir_retry(cg->fake, cg->dirs[i], deadline);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

int cgroup_destroy(Cgroup *cg)
{
        return cg_remove_dirs(cg, cg->n_dirs);
}

static int write_limit(const char *dir, const char *file, uint64_t v, FnError *reterr)
{
        char s[32];
        int r;

        (void)snprintf(s, sizeof(s), "%" PRIu64, v);
        r = file_write(dir, file, s);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot write %s: %s", file, strerror(-r));
        return 0;
}

/* v1 memory and memory+swap limits at the same value: no swap beyond the limit. The kernel
 * requires memsw >= memory at every moment, so memsw is raised first and lowered last; a new
 * group (old == 0) starts unlimited in both, so memory goes first there. memsw exists only with
 * swap accounting (CONFIG_MEMCG_SWAP, swapaccount=1); without it there is nothing to limit. */
static int v1_write_memory(Cgroup *cg, uint64_t old, uint64_t v, FnError *reterr)
{
        const char *mem = cg->dirs[CTRL_MEMORY];
        bool memsw = file_exists(mem, "memory.memsw.limit_in_bytes");
        int r;

        if (memsw && old != 0 && v > old) {
                r = write_limit(mem, "memory.memsw.limit_in_bytes", v, reterr);
                if (r < 0)
                        return r;
                return write_limit(mem, "memory.limit_in_bytes", v, reterr);
        }
        r = write_limit(mem, "memory.limit_in_bytes", v, reterr);
        if (r < 0 || !memsw)
                return r;
        return write_limit(mem, "memory.memsw.limit_in_bytes", v, reterr);
}

/* Writes the limits that differ from cg->lim (all of them for a new group, whose cg->lim is all
 * zeros) and records each one written. */
static int write_limits_v1(Cgroup *cg, const CgroupLimits *lim, FnError *reterr)
{
        int r;

        if (lim->memory_bytes != cg->lim.memory_bytes) {
                r = v1_write_memory(cg, cg->lim.memory_bytes, lim->memory_bytes, reterr);
                if (r < 0)
                        return r;
                cg->lim.memory_bytes = lim->memory_bytes;
        }
        if (lim->cpu_weight != cg->lim.cpu_weight) {
                r = write_limit(cg->dirs[CTRL_CPU], "cpu.shares",
                                MAX(lim->cpu_weight * 1024 / 100, 2), reterr);
                if (r < 0)
                        return r;
                cg->lim.cpu_weight = lim->cpu_weight;
        }
        if (lim->pids_max != cg->lim.pids_max) {
                r = write_limit(cg->dirs[CTRL_PIDS], "pids.max", lim->pids_max, reterr);
                if (r < 0)
                        return r;
                cg->lim.pids_max = lim->pids_max;
        }
        return 0;
}

/* Once per group: no swap, and OOM kills take the whole group. */
static int v2_write_fixed(Cgroup *cg, FnError *reterr)
{
        const char *d = cg->dirs[0];
        int r;

        /* memory.swap.max is missing without swap accounting; then nothing can swap. */
        if (file_exists(d, "memory.swap.max")) {
                r = write_limit(d, "memory.swap.max", 0, reterr);
                if (r < 0)
                        return r;
        }
        /* An OOM kill takes the whole sandbox, never leaves a half-dead one. */
        return write_limit(d, "memory.oom.group", 1, reterr);
}

static int write_limits_v2(Cgroup *cg, const CgroupLimits *lim, FnError *reterr)
{
        const char *d = cg->dirs[0];
        bool fresh = cg->lim.memory_bytes == 0;
        int r;

        if (lim->memory_bytes != cg->lim.memory_bytes) {
                r = write_limit(d, "memory.max", lim->memory_bytes, reterr);
                if (r < 0)
                        return r;
                cg->lim.memory_bytes = lim->memory_bytes;
        }
        if (fresh) {
                r = v2_write_fixed(cg, reterr);
                if (r < 0)
                        return r;
        }
        if (lim->cpu_weight != cg->lim.cpu_weight) {
                r = write_limit(d, "cpu.weight", lim->cpu_weight, reterr);
                if (r < 0)
                        return r;
                cg->lim.cpu_weight = lim->cpu_weight;
        }
        if (lim->pids_max != cg->lim.pids_max) {
                r = write_limit(d, "pids.max", lim->pids_max, reterr);
                if (r < 0)
                        return r;
                cg->lim.pids_max = lim->pids_max;
        }
        return 0;
}

static int limits_validate(const CgroupLimits *lim, FnError *reterr)
{
        if (!lim)
                return fn_error_set(reterr, -EINVAL, "no cgroup limits given");
        if (lim->memory_bytes == 0)
                return fn_error_set(reterr, -EINVAL, "memory limit must be > 0");
        if (lim->cpu_weight < 1 || lim->cpu_weight > 10000)
                return fn_error_set(reterr, -EINVAL, "cpu weight %" PRIu64 " not in 1..10000",
                                    lim->cpu_weight);
        if (lim->pids_max == 0)
                return fn_error_set(reterr, -EINVAL, "pids limit must be > 0");
        return 0;
}

int cgroup_create(CgroupRoot *root, const char *name, const CgroupLimits *lim, Cgroup **ret,
                  FnError *reterr)
{
        _cleanup_(cgroup_freep) Cgroup *cg = NULL;
        int r;

        if (!name || !name_is_valid(name))
                return fn_error_set(reterr, -EINVAL, "invalid cgroup name");
        r = limits_validate(lim, reterr);
        if (r < 0)
                return r;
        r = cg_new(root, name, &cg);
        if (r < 0)
                return r;

        for (size_t i = 0; i < cg->n_dirs; i++) {
                if (mkdir(cg->dirs[i], 0755) < 0) {
                        r = negative_errno();
                        /* Only what this call made is removed, never a group that was there. */
                        (void)cg_remove_dirs(cg, i);
                        return fn_error_set(reterr, r, "cannot create cgroup %s: %s", cg->dirs[i],
                                            strerror(-r));
                }
                fake_tree_notify(cg->fake, cg->dirs[i], true);
        }

        if (cg->version == CGROUP_V2) {
                cg->dir_fd = open(cg->dirs[0], O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (cg->dir_fd < 0) {
                        r = negative_errno();
                        (void)cgroup_destroy(cg);
                        return fn_error_set(reterr, r, "cannot open cgroup %s: %s", cg->dirs[0],
                                            strerror(-r));
                }
                r = write_limits_v2(cg, lim, reterr);
        } else
                r = write_limits_v1(cg, lim, reterr);
        if (r < 0) {
                (void)cgroup_destroy(cg);
                return r;
        }
        *ret = TAKE_PTR(cg);
        return 0;
}

int cgroup_set_limits(Cgroup *cg, const CgroupLimits *lim)
{
        int r = limits_validate(lim, NULL);
        if (r < 0)
                return r;
        return cg->version == CGROUP_V1 ? write_limits_v1(cg, lim, NULL)
                                        : write_limits_v2(cg, lim, NULL);
}

const char *const *cgroup_procs_paths(const Cgroup *cg)
{
        return (const char *const *)cg->procs;
}

int cgroup_dir_fd(const Cgroup *cg)
{
        return cg->dir_fd;
}

/* SIGKILLs each pid listed one per line in dir/file (tasks, cgroup.procs). */
static int kill_listed(const char *dir, const char *file)
{
        _cleanup_free_ char *s = NULL;
        char *save = NULL;
        int r, ret = 0;

        r = file_read(dir, file, &s);
        if (r < 0)
                return r;
        for (char *tok = strtok_r(s, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
                uint64_t pid;
                /* Never kill(0) or kill(-1), never init, never ourselves: a bogus line must
                 * not turn into a host-wide kill. */
                if (parse_uint64(tok, &pid) < 0 || pid <= 1 || pid > INT_MAX ||
                    (pid_t)pid == getpid())
                        continue;
                if (kill((pid_t)pid, SIGKILL) < 0 && errno != ESRCH && ret == 0)
                        ret = negative_errno();
        }
        return ret;
}

/* 1 if the kernel reports the group frozen, 0 if thawed, -EAGAIN while v1 is FREEZING. */
static int freeze_state(Cgroup *cg)
{
        _cleanup_free_ char *s = NULL;
        uint64_t v;
        int r;

        if (cg->version == CGROUP_V1) {
                r = file_read(cg->dirs[CTRL_FREEZER], "freezer.state", &s);
                if (r < 0)
                        return r;
                strip_newline(s);
                if (strcmp(s, "FROZEN") == 0)
                        return 1;
                return strcmp(s, "THAWED") == 0 ? 0 : -EAGAIN;
        }
        /* v2: cgroup.freeze is what was asked, "frozen" in cgroup.events what the kernel did. */
        r = file_read(cg->dirs[0], "cgroup.events", &s);
        if (r < 0)
                return r;
        r = parse_keyed(s, "frozen", &v);
        if (r < 0)
                return r;
        return v != 0;
}

/* Polls until the group reaches the state, for at most FREEZE_TIMEOUT_USEC. */
static int wait_freeze_state(Cgroup *cg, bool frozen)
{
        usec_t deadline = now_usec() + FREEZE_TIMEOUT_USEC, interval = 50;

        for (;;) {
                int r = freeze_state(cg);
                if (r < 0 && r != -EAGAIN)
                        return r;
                if (r == (int)frozen)
                        return 0;
                if (now_usec() >= deadline)
                        return -ETIMEDOUT;
                (void)sleep_usec(interval);
                interval = MIN(interval * 2, POLL_INTERVAL_USEC);
        }
}

static int freeze_write(Cgroup *cg, bool frozen)
{
        if (cg->version == CGROUP_V1)
                return file_write(cg->dirs[CTRL_FREEZER], "freezer.state",
                                  frozen ? "FROZEN" : "THAWED");
        return file_write(cg->dirs[0], "cgroup.freeze", frozen ? "1" : "0");
}

int cgroup_freeze(Cgroup *cg, bool frozen)
{
        int r;

        r = freeze_write(cg, frozen);
        if (r < 0)
                return r;
        r = wait_freeze_state(cg, frozen);
        /* A group left half-frozen would be neither usable nor reported as frozen: undo. */
        if (r < 0 && frozen)
                (void)freeze_write(cg, false);
        return r;
}

/* SIGKILL of every task in any of the group's hierarchies: a task that died half-way through
 * joining them is still ours. */
static int v1_kill_all(Cgroup *cg)
{
        int ret = 0;
        for (size_t c = 0; c < _CTRL_MAX; c++) {
                int r = kill_listed(cg->dirs[c], "tasks");
                if (r < 0 && r != -ENOENT && ret == 0)
                        ret = r;
        }
        return ret;
}

/* Frozen tasks cannot fork or exit, so the list read is complete and no pid is reused before the
 * SIGKILL lands; the kill takes effect when the group is thawed. */
static int v1_kill(Cgroup *cg)
{
        const char *fdir = cg->dirs[CTRL_FREEZER];
        bool frozen = false;
        int r, ret;

        r = file_write(fdir, "freezer.state", "FROZEN");
        if (r >= 0)
                frozen = wait_freeze_state(cg, true) >= 0;
        ret = r < 0 && r != -ENOENT ? r : 0;
        r = v1_kill_all(cg);
        if (r < 0 && ret == 0)
                ret = r;
        if (file_exists(fdir, "freezer.state")) {
                r = file_write(fdir, "freezer.state", "THAWED");
                if (r < 0 && ret == 0)
                        ret = r;
        }
        /* Freezing timed out (or there is no freezer): a task may have forked between the read
         * and the kill; one more pass gets it. */
        if (!frozen) {
                log_debug("cgroup %s was not frozen before the kill", fdir);
                (void)v1_kill_all(cg);
        }
        return ret;
}

static int v2_kill(Cgroup *cg)
{
        const char *d = cg->dirs[0];
        int r;

        r = file_write(d, "cgroup.kill", "1");
        if (r != -ENOENT)
                return r;
        /* COMPAT(kernel < 5.14): no cgroup.kill; remove when 5.14 is the oldest supported. A task
         * forking at this moment may escape this pass, but killing the sandbox's PID 1 ends its
         * pid namespace. ENOENT here also means the group is gone, which is success. */
        r = kill_listed(d, "cgroup.procs");
        return r == -ENOENT ? 0 : r;
}

int cgroup_kill(Cgroup *cg)
{
        return cg->version == CGROUP_V1 ? v1_kill(cg) : v2_kill(cg);
}

int cgroup_oom_kills(Cgroup *cg, uint64_t *ret)
{
        _cleanup_free_ char *s = NULL;
        uint64_t v;
        int r;

        r = file_read(cg_dir(cg, CTRL_MEMORY),
                      cg->version == CGROUP_V1 ? "memory.oom_control" : "memory.events", &s);
        if (r < 0)
                return r;
        r = parse_keyed(s, "oom_kill", &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

/* Opens the file that holds the group's peak memory, once: it is read after every invocation,
 * and a pread() of an open fd costs one syscall where open/read/close cost three. */
static int peak_fd_open(Cgroup *cg)
{
        char path[PATH_MAX];
        const char *dir = cg->version == CGROUP_V1 ? cg->dirs[CTRL_MEMORY] : cg->dirs[0];
        const char *files[] = {cg->version == CGROUP_V1 ? "memory.max_usage_in_bytes"
                                                        : "memory.peak",
                               /* COMPAT(kernel < 5.19): no memory.peak; the current use is a
                                * lower bound. */
                               cg->version == CGROUP_V1 ? NULL : "memory.current"};

        for (size_t k = 0; k < ELEMENTSOF(files) && files[k]; k++) {
                if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, files[k]) >= sizeof(path))
                        return -ENAMETOOLONG;
                cg->peak_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (cg->peak_fd >= 0 || errno != ENOENT)
                        break;
        }
        return cg->peak_fd >= 0 ? 0 : negative_errno();
}

int cgroup_memory_peak(Cgroup *cg, uint64_t *ret)
{
        char buf[32];
        ssize_t n;
        int r;

        if (cg->peak_fd < 0) {
                r = peak_fd_open(cg);
                if (r < 0)
                        return r;
        }
        n = pread(cg->peak_fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        strip_newline(buf);
        return parse_uint64(buf, ret);
}

int cgroup_pids_current(Cgroup *cg, uint64_t *ret)
{
        uint64_t v;
        int r = file_read_uint64(cg_dir(cg, CTRL_PIDS), "pids.current", &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

static void strv_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static bool entry_is_dir(DIR *d, const struct dirent *de)
{
        struct stat st;
        if (de->d_type != DT_UNKNOWN)
                return de->d_type == DT_DIR;
        return fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) >= 0 && S_ISDIR(st.st_mode);
}

/* Names of the child groups of dir, read completely before any of them is removed. */
static int list_child_groups(const char *dir, char ***ret, size_t *ret_n)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        char **v = NULL;
        size_t n = 0;
        int r = 0;

        if (!d)
                return negative_errno();
        while ((de = readdir(d)) && n < STALE_GROUPS_MAX) {
                char **nv;
                /* Control files are not directories; "." and ".." and anything we would not
                 * have named fail name_is_valid(). */
                if (!name_is_valid(de->d_name) || !entry_is_dir(d, de))
                        continue;
                nv = realloc(v, (n + 1) * sizeof(char *));
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[n] = strdup(de->d_name);
                if (!v[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        (void)closedir(d);
        if (r < 0) {
                strv_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int cgroup_root_cleanup_stale(CgroupRoot *root)
{
        int ret = 0;

        for (size_t i = 0; i < root->n_dirs; i++) {
                char **names = NULL;
                size_t n = 0;
                int r = list_child_groups(root->parent_dirs[i], &names, &n);
                if (r < 0) {
                        if (ret == 0)
                                ret = r;
                        continue;
                }
                for (size_t j = 0; j < n; j++) {
                        _cleanup_(cgroup_freep) Cgroup *cg = NULL;
                        /* v1: the handle covers all hierarchies, so a group listed under
                         * memory is gone from cpu, pids and freezer before they are listed. */
                        r = cg_new(root, names[j], &cg);
                        if (r >= 0)
                                r = cgroup_kill(cg);
                        if (r >= 0)
                                r = cgroup_destroy(cg);
                        else if (cg)
                                (void)cgroup_destroy(cg);
                        if (r < 0 && ret == 0)
                                ret = r;
                }
                strv_free(names, n);
        }
        return ret;
}
