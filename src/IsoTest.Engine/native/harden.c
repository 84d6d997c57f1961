/* What a container must not inherit or keep (PROTOCOL.md, "Hardening"): descriptors nobody listed, the
 * host's session keyring, the engine's resource limits, and syscalls outside the seccomp profile. */
#include "isotest-init.h"
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* Without close_range (before 5.9, or CLOEXEC before 5.11): walk /proc/self/fd with getdents64 into a
 * stack buffer, which needs no malloc (this also runs in a vfork child). */
static int each_fd_from(int first, int cloexec)
{
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -1;
    char buf[4096];
    long n;
    while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0)
        for (long off = 0; off < n;) {
            struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d =
                (void *)(buf + off);
            off += d->reclen;
            int fd = 0;
            for (const char *c = d->name; *c >= '0' && *c <= '9'; c++)
                fd = fd * 10 + (*c - '0');
            if (d->name[0] < '0' || d->name[0] > '9' || fd < first || fd == dir)
                continue;
            if (cloexec)
                fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
            else
                close(fd);          /* closing while listing is fine: getdents continues from its offset */
        }
    close(dir);
    return n < 0 ? -1 : 0;
}

void close_fds_from(int first)
{
    if (syscall(SYS_close_range, first, ~0U, 0) < 0 && each_fd_from(first, 0) < 0)
        die("fds", "/proc/self/fd");
}

int cloexec_fds_from(int first)
{
    if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return 0;
    return each_fd_from(first, 1);
}

/* runc's default: a fresh anonymous session keyring, so the keys of whoever started the engine (its
 * session keyring, and through it the user keyring it links) are not possessed inside. ENOSYS: a
 * kernel without keys. EDQUOT: the user's key quota (rootless: 200 keys by default) is spent. */
void join_session_keyring(void)
{
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS)
        die("keyring", errno == EDQUOT ? "/proc/sys/kernel/keys/maxkeys" : "KEYCTL_JOIN_SESSION_KEYRING");
}

/* Docker (25+, moby#45534) hands a container the daemon's limits, which systemd starts at
 * RLIMIT_NOFILE 1024:524288; .NET raises its own soft limit to the hard one, and the agent inherits
 * the engine's. 1024 soft matters: select() breaks on descriptors past 1023, and programs that walk
 * every possible descriptor take seconds with a million. The hard limit only goes down. */
void set_rlimits(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) < 0)
        die("rlimit", "RLIMIT_NOFILE");
    if (r.rlim_max == RLIM_INFINITY || r.rlim_max > 524288)
        r.rlim_max = 524288;
    r.rlim_cur = r.rlim_max < 1024 ? r.rlim_max : 1024;
    if (setrlimit(RLIMIT_NOFILE, &r) < 0)
        die("rlimit", "RLIMIT_NOFILE");
}

/* Installs the spec's filter (no_new_privs is already set): the last step before execve. */
int install_seccomp(void)
{
    if (!S.seccomp_len)
        return 0;
    struct sock_fprog prog = { .len = S.seccomp_len, .filter = (struct sock_filter *)S.seccomp };
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, S.seccomp_flags, &prog) == 0 ? 0 : -1;
}
