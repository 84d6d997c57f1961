/* Starting a process inside the container (the payload for `start`, a command for `exec`): a vfork
 * child that resets its signals, takes its own session, Docker's capabilities, the requested user and
 * no_new_privs, changes directory and execs with a PATH lookup in its own environment. */
#include "isotest-init.h"
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* Docker's default capability set. */
static const uint64_t default_caps =
    1ULL << CAP_CHOWN | 1ULL << CAP_DAC_OVERRIDE | 1ULL << CAP_FSETID | 1ULL << CAP_FOWNER |
    1ULL << CAP_MKNOD | 1ULL << CAP_NET_RAW | 1ULL << CAP_SETGID | 1ULL << CAP_SETUID |
    1ULL << CAP_SETFCAP | 1ULL << CAP_SETPCAP | 1ULL << CAP_NET_BIND_SERVICE | 1ULL << CAP_SYS_CHROOT |
    1ULL << CAP_KILL | 1ULL << CAP_AUDIT_WRITE;

static int drop_caps(void)
{
    for (int c = 0; c < 64; c++)
        if (!(default_caps >> c & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break;                          /* past the kernel's last capability */
            return -1;
        }
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2] = {
        { (uint32_t)default_caps, (uint32_t)default_caps, 0 },
        { (uint32_t)(default_caps >> 32), (uint32_t)(default_caps >> 32), 0 } };
    if (syscall(SYS_capset, &h, d) < 0)
        return -1;
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}


/* The child shares our memory (spawn below): it leaves the failed step and errno here for the parent. */
static _Noreturn void exec_fail(struct execerr *out, const char *stage)
{
    out->err = errno;
    strncpy(out->stage, stage, sizeof out->stage - 1);
    _exit(127);
}

/* In the child: clean signal state, own session, Docker's capabilities, the requested user,
 * no_new_privs, cwd, then execve with a PATH lookup like execvpe but in the payload's own env. */
static _Noreturn void child_exec(struct execerr *err, const struct pin *pin, uid_t uid, gid_t gid, const char *cwd, char **argv, char **envp)
{
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);                     /* .NET ignores SIGPIPE, and spawn keeps ignored signals */
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    if (drop_caps() < 0)
        exec_fail(err, "caps");
    /* The caller's supplementary groups go. Rootless without subordinate ranges setgroups is denied
     * (EPERM: "deny" was written to /proc/PID/setgroups, the kernel's price for a self-written gid_map),
     * and they stay: README "Rootless". */
    if ((setgroups(0, NULL) < 0 && !(ROOTLESS && errno == EPERM)) || setgid(gid) < 0 || setuid(uid) < 0)
        exec_fail(err, "user");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        exec_fail(err, "caps");
    if (chdir(cwd && *cwd ? cwd : "/") < 0)
        exec_fail(err, "chdir");
    /* Nothing but 0-2 crosses the exec (runc does the same), whatever init holds at the time. */
    if (cloexec_fds_from(3) < 0)
        exec_fail(err, "fds");
    unpin(pin);                                 /* the mask we were forked with (pin_here), before we start anything */
    /* Last: the filter may deny what the steps above need (setgroups, capset, prctl). */
    if (install_seccomp() < 0)
        exec_fail(err, "seccomp");
    if (!argv[0])
        errno = ENOENT, exec_fail(err, "exec");
    if (strchr(argv[0], '/')) {
        execve(argv[0], argv, envp);
        exec_fail(err, "exec");
    }
    const char *path = DEFAULT_PATH;
    for (char **e = envp; *e; e++)
        if (!strncmp(*e, "PATH=", 5))
            path = *e + 5;
    int eacces = 0;
    char full[4096];
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        snprintf(full, sizeof full, "%.*s%s%s", (int)(end - p), p, end > p ? "/" : "", argv[0]);
        execve(full, argv, envp);
        if (errno == EACCES)
            eacces = 1;
        else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV)
            exec_fail(err, "exec");
        if (!*end)
            break;
        p = end;
    }
    errno = eacces ? EACCES : ENOENT;
    exec_fail(err, "exec");
}

/* Fork places a new task on the idlest CPU (the scheduler's fork balancing). In a VM an idle vCPU runs only once the
 * hypervisor wakes it, and the parent's clone waits for that: measured on this 2-vCPU VM with the other vCPU idle,
 * vfork + exec of /bin/true from a C loop took 58-72 µs (median of 50) with the parent pinned to its CPU and
 * 66-1004 µs unpinned, from run to run. Each fork of ours is followed by the parent sleeping (a vfork parent until
 * the exec; the shim in wait4 after a few messages), so the CPU it leaves is the one the child should start on.
 * pin_here narrows this task to its current CPU for the fork (the child inherits that mask); unpin gives the
 * calling task its mask back. The child does that itself, before anything it starts could inherit the narrow mask
 * (init once it runs; a payload or exec just before its execve), and the parent right after the fork. Best effort:
 * a mask that cannot be read or set only costs the wake-up. */
void pin_here(struct pin *p)
{
    p->on = 0;
    int cpu = sched_getcpu();
    if (cpu < 0 || sched_getaffinity(0, sizeof p->saved, &p->saved) < 0)
        return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    p->on = sched_setaffinity(0, sizeof one, &one) == 0;
}

void unpin(const struct pin *p)
{
    if (p->on)
        sched_setaffinity(0, sizeof p->saved, &p->saved);
}

/* Starts a child that execs; returns its pid, or -1 with the failed step and errno in *err. The child
 * is a vfork (CLONE_VM | CLONE_VFORK, on a stack of its own): no page tables to copy and no
 * copy-on-write faults afterwards, and we resume only once it has exec'd or failed, so its report
 * is in place when we look. The stdio fds are dup'ed to 0-2 when given. With newpid the child is
 * PID 1 of a new PID namespace (nested in the container's), still our child for reaping. */
static struct spawn_args {
    const int *stdio;
    int newpid;
    uid_t uid;
    gid_t gid;
    const char *cwd;
    char **argv, **envp;
    struct execerr *err;
    struct pin pin;
} spawn_args;

static int spawn_child(void *arg)
{
    struct spawn_args *a = arg;
    for (int i = 0; a->stdio && i < 3; i++)
        if (dup2(a->stdio[i], i) < 0)
            exec_fail(a->err, "exec");
    if (a->newpid && own_proc() < 0)
        exec_fail(a->err, "proc");
    child_exec(a->err, &a->pin, a->uid, a->gid, a->cwd, a->argv, a->envp);
}

pid_t spawn(const int *stdio, int newpid, uid_t uid, gid_t gid, const char *cwd, char **argv, char **envp,
                   struct execerr *err)
{
    /* one child at a time uses it: we are suspended until it execs or exits */
    static char stack[64 * 1024] __attribute__((aligned(16)));
    *err = (struct execerr){ "", 0 };
    spawn_args = (struct spawn_args){ stdio, newpid, uid, gid, cwd, argv, envp, err, { .on = 0 } };
    pin_here(&spawn_args.pin);                  /* the child starts on this CPU, where we wait for its exec */
    pid_t pid = clone(spawn_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD | (newpid ? CLONE_NEWPID : 0), &spawn_args);
    unpin(&spawn_args.pin);
    if (pid < 0) {
        *err = (struct execerr){ "exec", errno };
        return -1;
    }
    return err->stage[0] ? -1 : pid;           /* a failed child exits 127 and is reaped like any other */
}

/* What an exec failure is about: the directory for chdir, the user for a credential step, else the program. */
const char *failed_path(const struct execerr *e, const char *cwd, uid_t uid, char **argv)
{
    if (!strcmp(e->stage, "chdir"))
        return cwd && *cwd ? cwd : "/";
    if (!strcmp(e->stage, "user"))
        return num(uid);
    return argv && argv[0] ? argv[0] : "";
}

/* Reads "cwd nenv env... argv..." from field `at` on: the command of `start` and `exec`. */
int parse_command(struct msg *m, int at, const char **cwd, char ***env, char ***argv)
{
    static char *envp[MAXFIELDS + 1];
    int nenv = m->n > at + 1 && !m->overflow ? atoi(m->f[at + 1]) : -1;
    if (nenv < 0 || at + 2 + nenv >= m->n)
        return -1;
    memcpy(envp, &m->f[at + 2], nenv * sizeof *envp);
    envp[nenv] = NULL;
    *cwd = m->f[at];
    *env = envp;
    *argv = &m->f[at + 2 + nenv];               /* f[n] is NULL: ends argv */
    return 0;
}

