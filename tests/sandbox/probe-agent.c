/* SPDX-License-Identifier: Apache-2.0 */
/* A stand-in for fnbox-agent that reports what it sees from inside a sandbox (security-anchors
 * §1 take-aways and §3.2: assert observable kernel state from the inside).
 *
 * Protocol on fd 3 (SOCK_SEQPACKET, one text message per packet):
 *   probe -> "hello" as soon as it runs (the test measures spawn-to-agent time with it)
 *   test  -> "report <port>"  probe -> one "key=value\n..." report; <port> is a TCP port the
 *                                      test listens on at the host's 127.0.0.1
 *   test  -> "ping"           probe -> "pong" (is it running? e.g. not frozen)
 *   test  -> "exit <n>"       probe exits with status n
 *   test  -> "sleep"          probe forks a child; both sleep until killed
 *   test  -> "memhog"         probe touches memory until the OOM killer stops it
 * EOF on fd 3 makes it exit 0.
 *
 * Each syscall probe passes arguments that make the call fail harmlessly if it is allowed
 * (EFAULT, EBADF, EINVAL...), so a seccomp refusal (EPERM, or ENOSYS for clone3) cannot be
 * confused with the call running (the bubblewrap try-syscall technique). libc only; built
 * without sanitizers, which would make syscalls of their own. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHAN 3
#define X32_SYSCALL_BIT 0x40000000UL

extern char **environ;

static char report[32768];
static size_t report_len;

static void add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void add(const char *fmt, ...)
{
        va_list ap;
        int n;

        if (report_len >= sizeof(report))
                return;
        va_start(ap, fmt);
        n = vsnprintf(report + report_len, sizeof(report) - report_len, fmt, ap);
        va_end(ap);
        if (n > 0)
                report_len = report_len + (size_t)n < sizeof(report) ? report_len + (size_t)n
                                                                     : sizeof(report) - 1;
}

static const char *err_name(int e)
{
        switch (e) {
        case 0:
                return "ok";
        case EPERM:
                return "EPERM";
        case ENOENT:
                return "ENOENT";
        case ESRCH:
                return "ESRCH";
        case EBADF:
                return "EBADF";
        case EACCES:
                return "EACCES";
        case EFAULT:
                return "EFAULT";
        case EINVAL:
                return "EINVAL";
        case EROFS:
                return "EROFS";
        case ENOSPC:
                return "ENOSPC";
        case ENOSYS:
                return "ENOSYS";
        case EAGAIN:
                return "EAGAIN";
        case ENOTTY:
                return "ENOTTY";
        case ETXTBSY:
                return "ETXTBSY";
        case EOPNOTSUPP:
                return "EOPNOTSUPP";
        case ECONNREFUSED:
                return "ECONNREFUSED";
        case ENETUNREACH:
                return "ENETUNREACH";
        case EHOSTUNREACH:
                return "EHOSTUNREACH";
        case EDQUOT:
                return "EDQUOT";
        case EAFNOSUPPORT:
                return "EAFNOSUPPORT";
        default: {
                static char buf[32];
                snprintf(buf, sizeof(buf), "errno%d", e);
                return buf;
        }
        }
}

/* errno of a -1 result, or "ok" */
static const char *res(long r)
{
        return err_name(r < 0 ? errno : 0);
}

static void send_msg(const char *s, size_t len)
{
        while (send(CHAN, s, len, MSG_NOSIGNAL) < 0 && errno == EINTR)
                ;
}

/* ---- identity, status, limits ---- */

static void report_status(void)
{
        static const char *const keys[] = {
            "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:"};
        char line[256];
        FILE *f = fopen("/proc/self/status", "re");

        if (!f) {
                add("status=%s\n", err_name(errno));
                return;
        }
        while (fgets(line, sizeof(line), f))
                for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                        if (strncmp(line, keys[i], strlen(keys[i])) == 0) {
                                char *v = line + strlen(keys[i]);
                                v += strspn(v, " \t");
                                v[strcspn(v, "\n")] = '\0';
                                add("status.%.*s=%s\n", (int)strlen(keys[i]) - 1, keys[i], v);
                        }
        fclose(f);
}

static void report_identity(int argc, char **argv)
{
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        int sig = -1;
        char host[128] = "";
        struct rlimit rl;
        char exe[256];
        ssize_t n;

        getresuid(&ru, &eu, &su);
        getresgid(&rg, &eg, &sg);
        add("uid=%u,%u,%u\ngid=%u,%u,%u\n", ru, eu, su, rg, eg, sg);
        add("groups=%d\n", getgroups(0, NULL));
        add("pid=%d\nppid=%d\nsid=%d\n", getpid(), getppid(), getsid(0));
        prctl(PR_GET_PDEATHSIG, &sig);
        add("pdeathsig=%d\n", sig);
        gethostname(host, sizeof(host) - 1);
        add("hostname=%s\n", host);
        add("argc=%d\nargv0=%s\n", argc, argc > 0 ? argv[0] : "");
        for (char **e = environ; *e; e++)
                add("env=%s\n", *e);
        getrlimit(RLIMIT_NOFILE, &rl);
        add("rlimit_nofile=%llu,%llu\n", (unsigned long long)rl.rlim_cur,
            (unsigned long long)rl.rlim_max);
        getrlimit(RLIMIT_CORE, &rl);
        add("rlimit_core=%llu,%llu\n", (unsigned long long)rl.rlim_cur,
            (unsigned long long)rl.rlim_max);
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = '\0';
        add("exe=%s\n", exe);
        prctl(PR_GET_NAME, host);
        add("comm=%s\n", host);
        add("exe_write=%s\n", res(open("/proc/self/exe", O_WRONLY | O_CLOEXEC)));
        add("umask=%03o\n", umask(022));
        report_status();
}

static void report_lines(const char *key, const char *path)
{
        char line[512];
        FILE *f = fopen(path, "re");

        if (!f) {
                add("%s=!%s\n", key, err_name(errno));
                return;
        }
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                add("%s=%s\n", key, line);
        }
        fclose(f);
}

/* "mnt=<mount point> <per-mount options> <fstype> <super options>" per line of mountinfo */
static void report_mounts(void)
{
        char line[1024];
        FILE *f = fopen("/proc/self/mountinfo", "re");

        if (!f) {
                add("mnt=!%s\n", err_name(errno));
                return;
        }
        while (fgets(line, sizeof(line), f)) {
                char *fields[12] = {}, *save = NULL, *t, *dash;
                int n = 0;

                line[strcspn(line, "\n")] = '\0';
                dash = strstr(line, " - ");
                if (!dash)
                        continue;
                *dash = '\0';
                for (t = strtok_r(line, " ", &save); t && n < 6; t = strtok_r(NULL, " ", &save))
                        fields[n++] = t;
                t = dash + 3;
                {
                        char *fstype = strtok_r(t, " ", &save);
                        char *src = strtok_r(NULL, " ", &save);
                        char *sopts = strtok_r(NULL, " ", &save);
                        (void)src;
                        if (n >= 6 && fstype)
                                add("mnt=%s %s %s %s\n", fields[4], fields[5], fstype,
                                    sopts ? sopts : "");
                }
        }
        fclose(f);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "key=a,b,c" with the sorted entries of a directory (without . and ..) */
static void report_dir(const char *key, const char *path, bool numeric_only)
{
        char *names[256];
        size_t n = 0;
        struct dirent *de;
        DIR *d = opendir(path);

        if (!d) {
                add("%s=!%s\n", key, err_name(errno));
                return;
        }
        while ((de = readdir(d)) && n < 256) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (numeric_only && strspn(de->d_name, "0123456789") != strlen(de->d_name))
                        continue;
                names[n++] = strdup(de->d_name);
        }
        qsort(names, n, sizeof(names[0]), cmp_str);
        add("%s=", key);
        for (size_t i = 0; i < n; i++) {
                add("%s%s", i ? "," : "", names[i]);
                free(names[i]);
        }
        add("\n");
        closedir(d);
}

static void report_fds(void)
{
        char buf[512] = "", link[256];
        struct dirent *de;
        DIR *d = opendir("/proc/self/fd");
        int self = d ? dirfd(d) : -1;
        int fds[64], n = 0;

        if (!d) {
                add("fds=!%s\n", err_name(errno));
                return;
        }
        while ((de = readdir(d)) && n < 64) {
                if (de->d_name[0] == '.' || atoi(de->d_name) == self)
                        continue;
                fds[n++] = atoi(de->d_name);
        }
        closedir(d);
        for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++)
                        if (fds[j] < fds[i]) {
                                int t = fds[i];
                                fds[i] = fds[j];
                                fds[j] = t;
                        }
        for (int i = 0; i < n; i++) {
                size_t l = strlen(buf);
                snprintf(buf + l, sizeof(buf) - l, "%s%d", i ? "," : "", fds[i]);
        }
        add("fds=%s\n", buf);
        for (int i = 0; i < 4; i++) {
                char p[32];
                ssize_t k;
                snprintf(p, sizeof(p), "/proc/self/fd/%d", i);
                k = readlink(p, link, sizeof(link) - 1);
                link[k > 0 ? k : 0] = '\0';
                add("fd%d=%s\n", i, link);
        }
}

/* ---- file system ---- */

static const char *try_create(const char *path)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return err_name(errno);
        close(fd);
        unlink(path);
        return "ok";
}

static void report_tmp(void)
{
        static char chunk[65536];
        struct statvfs sv;
        struct stat st;
        int fd, err = 0;
        unsigned long long written = 0;

        add("write_tmp=%s\n", try_create("/tmp/probe-file"));
        if (statvfs("/tmp", &sv) == 0)
                add("tmp_bytes=%llu\ntmp_inodes=%llu\n",
                    (unsigned long long)sv.f_blocks * sv.f_frsize, (unsigned long long)sv.f_files);
        if (stat("/tmp", &st) == 0)
                add("tmp_owner=%u\ntmp_mode=%o\n", st.st_uid, st.st_mode & 07777);
        /* fill it: must stop at the size limit */
        fd = open("/tmp/fill", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                add("tmp_fill=!%s\n", err_name(errno));
                return;
        }
        memset(chunk, 'x', sizeof(chunk));
        for (int i = 0; i < 4096; i++) {
                ssize_t k = write(fd, chunk, sizeof(chunk));
                if (k < 0) {
                        err = errno;
                        break;
                }
                written += (unsigned long long)k;
        }
        close(fd);
        unlink("/tmp/fill");
        add("tmp_fill=%s\ntmp_fill_bytes=%llu\n", err_name(err), written);
}

static void report_fs(void)
{
        char buf[256];
        ssize_t n;
        int fd;
        struct stat st;

        add("write_usr=%s\n", try_create("/usr/probe-file"));
        add("write_task=%s\n", try_create("/var/task/probe-file"));
        add("write_root=%s\n", try_create("/probe-file"));
        add("write_etc=%s\n", try_create("/etc/probe-file"));
        add("write_dev=%s\n", try_create("/dev/probe-file"));
        add("write_devshm=%s\n", try_create("/dev/shm/probe-file"));
        fd = open("/var/task/hello.txt", O_RDONLY | O_CLOEXEC);
        n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        add("task_read=%s\n", fd >= 0 ? buf : err_name(errno));
        if (fd >= 0)
                close(fd);
        report_dir("task", "/var/task", false);
        report_tmp();
        report_dir("dev", "/dev", false);
        report_dir("sys", "/sys", false);
        report_dir("procpids", "/proc", true);
        report_dir("proc_acpi", "/proc/acpi", false);
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        add("devnull_write=%s\n", fd >= 0 && write(fd, "x", 1) == 1 ? "ok" : err_name(errno));
        if (fd >= 0)
                close(fd);
        fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        add("devzero_read=%s\n",
            fd >= 0 && read(fd, buf, 8) == 8 && !buf[0] ? "ok" : err_name(errno));
        if (fd >= 0)
                close(fd);
        fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        add("devurandom_read=%s\n", fd >= 0 && read(fd, buf, 8) == 8 ? "ok" : err_name(errno));
        if (fd >= 0)
                close(fd);
        if (stat("/proc/keys", &st) == 0)
                add("proc_keys=%s\n", S_ISCHR(st.st_mode) ? "chr" : "other");
        if (stat("/proc/timer_list", &st) == 0)
                add("proc_timer_list=%s\n", S_ISCHR(st.st_mode) ? "chr" : "other");
        report_lines("passwd", "/etc/passwd");
        report_lines("cgroup", "/proc/self/cgroup");
        report_mounts();
}

/* ---- network ---- */

static const char *try_connect(const char *addr, int port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const char *r;

        inet_pton(AF_INET, addr, &sa.sin_addr);
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? err_name(errno) : "ok";
        close(fd);
        return r;
}

static void report_net(int port)
{
        struct if_nameindex *ifs = if_nameindex();
        struct ifreq ifr = {};
        int fd;

        add("ifaces=");
        for (struct if_nameindex *i = ifs; i && i->if_index; i++)
                add("%s%s", i == ifs ? "" : ",", i->if_name);
        add("\n");
        if (ifs)
                if_freenameindex(ifs);
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        strcpy(ifr.ifr_name, "lo");
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
                add("lo_up=%d\n", !!(ifr.ifr_flags & IFF_UP));
        close(fd);
        add("connect_host=%s\n", try_connect("127.0.0.1", port));
        add("connect_ext=%s\n", try_connect("10.255.255.1", 80));
}

/* ---- syscalls ---- */

/* Runs fn in a forked child; returns "ok", an errno name, or "signal:N". */
static const char *in_child(long (*fn)(void))
{
        static char buf[32];
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return err_name(errno);
        if (pid == 0) {
                long r = fn();
                _exit(r < 0 ? (errno & 0xff) : 0);
        }
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status)) {
                snprintf(buf, sizeof(buf), "signal:%d", WTERMSIG(status));
                return buf;
        }
        return err_name(WEXITSTATUS(status));
}

static long do_unshare_user(void)
{
        return unshare(CLONE_NEWUSER);
}

static long do_x32(void)
{
        /* getpid through the x32 ABI */
        return syscall(X32_SYSCALL_BIT | SYS_getpid);
}

static long do_i386(void)
{
        long ret;
        /* getpid (20) through the i386 ABI */
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        return ret < 0 && ret > -4096 ? (errno = (int)-ret, -1) : 0;
}

static long do_socket_unix(void)
{
        return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static long do_personality_linux32(void)
{
        return syscall(SYS_personality, PER_LINUX32);
}

static const char *try_clone_flags(unsigned long flags)
{
        long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);

        if (pid == 0)
                _exit(0);
        if (pid < 0)
                return err_name(errno);
        waitpid((pid_t)pid, NULL, 0);
        return "ok";
}

static void report_syscalls(void)
{
        void *bad = (void *)1;
        int n;

        add("sys_mount=%s\n", res(syscall(SYS_mount, bad, bad, bad, 0, bad)));
        add("sys_umount2=%s\n", res(syscall(SYS_umount2, bad, 0)));
        add("sys_pivot_root=%s\n", res(syscall(SYS_pivot_root, bad, bad)));
        add("sys_chroot=%s\n", res(syscall(SYS_chroot, bad)));
        add("sys_open_tree=%s\n", res(syscall(SYS_open_tree, -1, bad, 0)));
        add("sys_fsopen=%s\n", res(syscall(SYS_fsopen, bad, 0)));
        add("sys_move_mount=%s\n", res(syscall(SYS_move_mount, -1, bad, -1, bad, 0)));
        add("sys_mount_setattr=%s\n", res(syscall(SYS_mount_setattr, -1, bad, 0, bad, 0)));
        add("sys_unshare_user=%s\n", in_child(do_unshare_user));
        add("sys_clone_newuser=%s\n", try_clone_flags(CLONE_NEWUSER));
        add("sys_clone_newns=%s\n", try_clone_flags(CLONE_NEWNS));
        add("sys_clone_plain=%s\n", try_clone_flags(0));
        add("sys_clone3=%s\n", res(syscall(SYS_clone3, NULL, 0)));
        add("sys_setns=%s\n", res(syscall(SYS_setns, -1, 0)));
        add("sys_ptrace=%s\n", res(ptrace(PTRACE_PEEKDATA, 999999, NULL, NULL)));
        add("sys_process_vm_readv=%s\n",
            res(syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0)));
        add("sys_pidfd_getfd=%s\n", res(syscall(SYS_pidfd_getfd, -1, 0, 0)));
        add("sys_bpf=%s\n", res(syscall(SYS_bpf, -1, NULL, 0)));
        add("sys_perf_event_open=%s\n", res(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0)));
        add("sys_io_uring_setup=%s\n", res(syscall(SYS_io_uring_setup, 0, NULL)));
        add("sys_userfaultfd=%s\n", res(syscall(SYS_userfaultfd, 1 | (1 << 30))));
        add("sys_keyctl=%s\n", res(syscall(SYS_keyctl, 0x7fff, 0, 0, 0, 0)));
        add("sys_add_key=%s\n", res(syscall(SYS_add_key, bad, bad, NULL, 0, 0)));
        add("sys_ioctl_tiocsti=%s\n", res(syscall(SYS_ioctl, -1, TIOCSTI, "x")));
        add("sys_ioctl_tiocsti_hi=%s\n", res(syscall(SYS_ioctl, -1, (1UL << 32) | TIOCSTI, "x")));
        add("sys_ioctl_tioclinux=%s\n", res(syscall(SYS_ioctl, -1, TIOCLINUX, "x")));
        add("sys_ioctl_fionread=%s\n", res(syscall(SYS_ioctl, -1, FIONREAD, &n)));
        add("sys_name_to_handle_at=%s\n",
            res(syscall(SYS_name_to_handle_at, -1, bad, bad, bad, 0)));
        add("sys_open_by_handle_at=%s\n", res(syscall(SYS_open_by_handle_at, -1, bad, 0)));
        add("sys_settimeofday=%s\n", res(syscall(SYS_settimeofday, NULL, NULL)));
        add("sys_clock_settime=%s\n", res(syscall(SYS_clock_settime, CLOCK_REALTIME, bad)));
        add("sys_iopl=%s\n", res(syscall(SYS_iopl, 0)));
        add("sys_personality_query=%s\n", res(syscall(SYS_personality, 0xffffffffUL)));
        add("sys_personality_linux32=%s\n", in_child(do_personality_linux32));
        add("sys_personality_hi=%s\n", res(syscall(SYS_personality, (1UL << 32) | PER_LINUX32)));
        add("sys_x32=%s\n", in_child(do_x32));
        add("sys_i386=%s\n", in_child(do_i386));
        add("sys_getpid=%s\n", res(syscall(SYS_getpid)));
        add("sys_socket_vsock=%s\n", res(syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0)));
        add("sys_socket_alg=%s\n", res(syscall(SYS_socket, AF_ALG, SOCK_SEQPACKET, 0)));
        add("sys_socket_alg_hi=%s\n",
            res(syscall(SYS_socket, (1UL << 32) | AF_ALG, SOCK_SEQPACKET, 0)));
        add("sys_socket_unix=%s\n", in_child(do_socket_unix));
}

/* fork until the pids cgroup says no (bounded) */
static void report_forks(void)
{
        pid_t kids[512];
        int n = 0, err = 0;

        while (n < 512) {
                pid_t p = fork();
                if (p == 0) {
                        pause();
                        _exit(0);
                }
                if (p < 0) {
                        err = errno;
                        break;
                }
                kids[n++] = p;
        }
        for (int i = 0; i < n; i++)
                kill(kids[i], SIGKILL);
        for (int i = 0; i < n; i++)
                waitpid(kids[i], NULL, 0);
        add("forks=%d\nforks_stop=%s\n", n, err_name(err));
}

static void do_report(int argc, char **argv, int port)
{
        report_len = 0;
        report_identity(argc, argv);
        report_fds();
        report_fs();
        report_net(port);
        report_syscalls();
        report_forks();
        add("end=1\n");
        send_msg(report, report_len);
}

static void memhog(void)
{
        for (;;) {
                char *p =
                    mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED)
                        continue;
                memset(p, 1, 1 << 20);
        }
}

int main(int argc, char **argv)
{
        char cmd[256];

        send_msg("hello", 5);
        for (;;) {
                ssize_t n = recv(CHAN, cmd, sizeof(cmd) - 1, 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return 0;
                cmd[n] = '\0';
                if (strncmp(cmd, "exit ", 5) == 0)
                        return atoi(cmd + 5);
                if (strncmp(cmd, "report ", 7) == 0)
                        do_report(argc, argv, atoi(cmd + 7));
                else if (strcmp(cmd, "ping") == 0)
                        send_msg("pong", 4);
                else if (strcmp(cmd, "sleep") == 0) {
                        if (fork() == 0)
                                for (;;)
                                        pause();
                        send_msg("sleeping", 8);
                        for (;;)
                                pause();
                } else if (strcmp(cmd, "memhog") == 0)
                        memhog();
        }
}
