/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/filter.h>

#include "error.h"
#include "sandbox.h"

/* Shared by sandbox.c and sandbox-{mount,seccomp,caps,net}.c. Functions marked "child-safe" run
 * in the sandbox child between clone3 and execveat: they do not allocate, log or take locks,
 * and report errors as -errno. Everything they need is prepared beforehand, in the parent or in
 * sandbox_host_new, and reaches the child through its copy of the parent's memory (clone3
 * without CLONE_VM behaves like fork). */

/* The child's fixed fds once the FDS step has run. The channel is the only fd the agent keeps
 * across exec; the sync pipe and the agent binary are CLOEXEC. */
#define SANDBOX_FD_CHANNEL 3
#define SANDBOX_FD_SYNC 4
#define SANDBOX_FD_AGENT 5
/* The template mount namespace, until the mount step has joined it (then closed). */
#define SANDBOX_FD_MOUNT_NS 6

/* What a failing child writes to the sync pipe before _exit(EXIT_FAILURE). */
typedef struct SandboxSyncMsg {
        int step;  /* SandboxStep */
        int error; /* positive errno */
} SandboxSyncMsg;

/* ---- sandbox-seccomp.c (the only user of libseccomp) ---- */

/* Builds the sandbox filter once with libseccomp and exports it as classic BPF into ret
 * (ret->filter is malloc'd; release with sandbox_seccomp_done). */
int sandbox_seccomp_build(struct sock_fprog *ret, FnError *reterr);
void sandbox_seccomp_done(struct sock_fprog *prog);
/* Child-safe. Installs prog on the calling thread; PR_SET_NO_NEW_PRIVS must be set already. */
int sandbox_seccomp_load(const struct sock_fprog *prog);

/* ---- sandbox-caps.c (the only user of libcap) ---- */

typedef struct SandboxCaps {
        void *empty;           /* cap_t with every flag clear, made once */
        unsigned int max_bits; /* number of capabilities the kernel knows (cap_last_cap + 1) */
} SandboxCaps;

int sandbox_caps_init(SandboxCaps *c, FnError *reterr);
void sandbox_caps_done(SandboxCaps *c);
/* Child-safe. While still privileged: drops every capability from the bounding set and clears
 * the ambient set. */
int sandbox_caps_drop_bounding(const SandboxCaps *c);
/* Child-safe. After the switch to the sandbox uid: clears the effective, permitted and
 * inheritable sets, then verifies that no capability is left in any set (-EPERM if one is). */
int sandbox_caps_clear(const SandboxCaps *c);

/* ---- sandbox-net.c ---- */

/* Child-safe. Brings up "lo" in the (new, otherwise empty) network namespace. */
int sandbox_net_loopback_up(void);
/* Daemon side, single-threaded process only: makes a new, empty network namespace with "lo" up
 * by unsharing the caller's own and switching back to orig_fd; *ret is an O_CLOEXEC fd of it.
 * -ENOTRECOVERABLE if the switch back failed: the caller is then still in the new namespace. */
int sandbox_net_make(int orig_fd, int *ret);

/* ---- sandbox-mount.c ---- */

#define SANDBOX_ROOT_LINKS_MAX 8
#define SANDBOX_ETC_FILES_MAX 8

/* What the host's root looks like, probed once by sandbox_host_new. */
typedef struct SandboxRootLayout {
        /* Top-level symlinks into usr/ (merged-/usr): name -> target, e.g. "lib64" -> "usr/lib64".
         */
        struct {
                char name[16];
                char target[64];
        } links[SANDBOX_ROOT_LINKS_MAX];
        size_t n_links;
        bool has_ld_cache;     /* /etc/ld.so.cache */
        bool has_ssl_certs;    /* /etc/ssl/certs */
        bool has_alternatives; /* /etc/alternatives (Debian's symlinks for awk, etc.) */
        bool has_bash;         /* /usr/bin/bash: becomes /bin/sh inside, as on Amazon Linux */
        char runtime_dir[512]; /* host dir bound read-only at /var/runtime; "" for none */
} SandboxRootLayout;

/* Probes the host root. -EOPNOTSUPP with a message if it is not merged-/usr. */
int sandbox_mount_layout_probe(SandboxRootLayout *ret, FnError *reterr);

typedef struct SandboxEtcFile {
        const char *name; /* relative to the new root, e.g. "etc/passwd" */
        const char *data;
        size_t len;
} SandboxEtcFile;

/* Builds the part of the root every sandbox shares (/, the symlinks, /usr, /dev) in a helper
 * process, in a mount namespace of its own whose root it becomes (mounted on root_dir first,
 * which only that namespace sees), and returns an O_CLOEXEC fd of that namespace: the template
 * each child copies. Blocks for the helper (a fork of the caller, which must be
 * single-threaded): about a millisecond. */
int sandbox_mount_template_new(const SandboxRootLayout *l, const char *root_dir, int *ret,
                               FnError *reterr);

/* Everything the child needs to build its root; prepared by the parent. */
typedef struct SandboxMountPlan {
        const SandboxRootLayout *layout;
        const char *code_dir; /* host directory bound at /var/task, or NULL for a stem cell */
        const char *cell_dir; /* stem cell: <run_dir>/<id>, shared on the host; else NULL */
        const char *tmp_opts; /* tmpfs options of /tmp */
        const char *shm_opts; /* tmpfs options of /dev/shm */
        SandboxEtcFile etc[SANDBOX_ETC_FILES_MAX];
        size_t n_etc;
} SandboxMountPlan;

/* Child-safe. Runs the steps MOUNT_PRIVATE through PIVOT_ROOT (in the order TASK, ROOT:
 * cloning host paths; MOUNT_PRIVATE: joining a private copy of the template namespace held at
 * SANDBOX_FD_MOUNT_NS, which it closes; ROOT: /etc; TASK, TMP, PROC, DEV; PIVOT_ROOT: cwd and
 * stdio): afterwards "/" is the read-only root, no host mount is left in the namespace, cwd is
 * "/" and fds 0-2 point at the sandbox's own /dev/null. On failure, *ret_step names the step
 * that failed. */
int sandbox_mount_setup(const SandboxMountPlan *p, SandboxStep *ret_step);
