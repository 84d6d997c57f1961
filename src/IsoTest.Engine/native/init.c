/* init, PID 1 of the container: joins its cgroups, builds the root, reports `created`, then serves
 * the control socket and reaps every process until the payload exits. */
#include "isotest-init.h"
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>


/* v1: init moves itself by writing 0 to each tasks file; cheaper than the engine writing our pid into
 * cgroup.procs (no RCU grace period on the global lock, DESIGN.md). Then a cgroup namespace, so the
 * container sees its cgroup as its root. */
static void join_cgroups(struct cgroup_fds *cg)
{
    for (int i = 0; i < S.ncg1; i++)
        if (write(cg->cg1[i], "0", 1) != 1)
            die("cgroup", S.cg1[i]);
    if (cg->cg2_need_write && write(cg->cg2procs, "0", 1) != 1)
        die("cgroup", S.cg2);
    for (int i = 0; i < S.ncg1; i++)
        close(cg->cg1[i]);
    if (cg->cg2 >= 0)
        close(cg->cg2), close(cg->cg2procs);
    if (unshare(CLONE_NEWCGROUP) < 0)
        die("cgroup", "unshare");
}


static void set_identity_and_network(void)
{
    if (S.hostname && sethostname(S.hostname, strlen(S.hostname)) < 0)
        die("hostname", S.hostname);
    if (S.netns != 1)
        return;                                 /* the host's network, or a ready one with lo up */
    if (lo_up() < 0)
        die("network", "lo");
}

static pid_t payload = -1;
static struct { pid_t pid; char id[64]; } execs[MAXEXECS];

/* start cwd nenv env... argv...: the command comes with `start`, not in the spec, so setting a
 * container up does not depend on what it will run. */
static void handle_start(struct msg *m)
{
    struct execerr e;
    const char *cwd;
    char **env, **argv;
    if (payload > 0)
        return;
    if (parse_command(m, 1, &cwd, &env, &argv) < 0) {
        send_msg(-1, "execfail", "exec", num(EINVAL), "", NULL);
        return;
    }
    /* pid1: the payload is PID 1 of a PID namespace of its own, as a command is under dockerd without --init:
     * the kernel then drops the signals it has no handler for (a `sleep` outlives SIGTERM until SIGKILL) */
    pid_t pid = spawn(NULL, S.pid1, S.uid, S.gid, cwd, argv, env, &e);
    if (pid < 0) {
        send_msg(-1, "execfail", e.stage, num(e.err), failed_path(&e, cwd, S.uid, argv), NULL);
        return;
    }
    payload = pid;
    /* the engine sees EOF on the log sockets only when every holder closed them; we must not be one */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int i = 0; i < 3; i++)
        dup2(null, i);
    close(null);
    send_msg(-1, "started", num(pid), NULL);
}

/* exec id uid gid cwd nenv env... argv... + 3 fds */
static void handle_exec(struct msg *m)
{
    struct execerr e = { "exec", EINVAL };
    const char *id = m->n > 1 ? m->f[1] : "", *cwd = NULL;
    char **env, **argv = NULL;
    int slot = 0;
    while (slot < MAXEXECS && execs[slot].pid)
        slot++;
    pid_t pid = -1;
    if (m->nfds == 3 && m->n > 4 && parse_command(m, 4, &cwd, &env, &argv) == 0 && slot < MAXEXECS)
        pid = spawn(m->fds, 0, strtoul(m->f[2], NULL, 10), strtoul(m->f[3], NULL, 10), cwd, argv, env, &e);
    for (int i = 0; i < m->nfds; i++)
        close(m->fds[i]);
    if (pid < 0) {
        send_msg(-1, "exec-failed", id, e.stage, num(e.err),
                 failed_path(&e, cwd, m->n > 2 ? strtoul(m->f[2], NULL, 10) : 0, argv), NULL);
        return;
    }
    execs[slot].pid = pid;
    snprintf(execs[slot].id, sizeof execs[slot].id, "%s", id);
    send_msg(-1, "exec-started", id, NULL);
}

/* A socket made here lives in the container's network namespace; handing it to the engine is how
 * port forwarding works rootless, where the engine cannot setns (DESIGN.md, Networking). The connect
 * is non-blocking and completed from serve's poll: a port that never answers (a listener with a full
 * backlog drops the SYN) would otherwise hold PID 1 for the kernel's whole SYN retry time, with no
 * reaping and no other request served. */
static struct { int fd; char id[64]; } connects[MAXCONNECTS];
static int nconnects;

static void connect_done(int i, int err)
{
    int s = connects[i].fd;
    if (err) {
        send_msg(-1, "connect-failed", connects[i].id, num(err), NULL);
    } else {
        fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK);     /* the engine gets a plain socket */
        send_msg(s, "connected", connects[i].id, NULL);
    }
    close(s);
    connects[i] = connects[--nconnects];
}

static void handle_connect(struct msg *m)
{
    if (m->n < 2)
        return;                                 /* no id to answer to */
    const char *id = m->f[1];
    char *end = "";
    unsigned long port = m->n == 3 ? strtoul(m->f[2], &end, 10) : 0;
    if (m->n != 3 || !*m->f[2] || *end || port == 0 || port > 65535) {
        send_msg(-1, "connect-failed", id, num(EINVAL), NULL);
        return;
    }
    if (nconnects == MAXCONNECTS) {
        send_msg(-1, "connect-failed", id, num(EAGAIN), NULL);     /* the engine retries, as for a refusal */
        return;
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) {
        send_msg(-1, "connect-failed", id, num(errno), NULL);
        return;
    }
    int i = nconnects++;
    connects[i].fd = s;
    snprintf(connects[i].id, sizeof connects[i].id, "%s", id);
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
        connect_done(i, 0);
    else if (errno != EINPROGRESS)
        connect_done(i, errno);
}

/* A connect in progress became writable: SO_ERROR says how it ended. */
static void connect_ready(int i)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(connects[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    connect_done(i, err);
}

/* Reaps every child (orphans re-parented to us too). The payload's exit ends the container. */
static void reap(void)
{
    int st;
    for (pid_t pid; (pid = waitpid(-1, &st, WNOHANG)) > 0;) {
        if (pid == payload) {
            send_msg(-1, "exit", num(st), NULL);
            _exit(0);                           /* as PID 1 exiting, the kernel kills the rest */
        }
        for (int i = 0; i < MAXEXECS; i++)
            if (execs[i].pid == pid) {
                send_msg(-1, "exec-exit", execs[i].id, num(st), NULL);
                execs[i].pid = 0;
            }
    }
}

/* `kill`: SIGKILL to the payload and the running execs, whose exits are reported as usual; once the payload's is,
 * init exits, and as PID 1 exiting makes the kernel kill everything else in the namespace (zap_pid_ns_processes walks
 * only this namespace's pids). Not kill(-1, SIGKILL): that walks every task on the host under tasklist_lock, which at
 * 10,000 containers alive (30,000 tasks) took 44 % of the CPU while they were being removed and held up every exit
 * on the host behind it (perf over the scale run's teardown). */
static void kill_payload_and_execs(void)
{
    if (payload <= 0)
        _exit(1);                               /* nothing to report an exit for: the kernel kills the rest */
    kill(payload, SIGKILL);
    for (int i = 0; i < MAXEXECS; i++)
        if (execs[i].pid > 0)
            kill(execs[i].pid, SIGKILL);
}

static void serve(int sfd)
{
    static struct msg m;
    struct pollfd pf[2 + MAXCONNECTS] = { { CTL, POLLIN, 0 }, { sfd, POLLIN, 0 } };
    for (;;) {
        int n = nconnects;
        for (int i = 0; i < n; i++)
            pf[2 + i] = (struct pollfd){ connects[i].fd, POLLOUT, 0 };
        if (poll(pf, 2 + n, -1) < 0)
            continue;
        for (int i = n - 1; i >= 0; i--)        /* backwards: connect_done moves the last entry into i */
            if (pf[2 + i].revents)
                connect_ready(i);
        if (pf[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo == SIGCHLD)
                    reap();
                else if (payload > 0)
                    kill(payload, si.ssi_signo);
            }
        }
        if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (!recv_msg(&m))
            _exit(1);                           /* the engine is gone: as PID 1 exiting, the kernel kills the rest */
        const char *v = m.f[0];
        if (!strcmp(v, "start"))
            handle_start(&m);
        else if (!strcmp(v, "exec"))
            handle_exec(&m);
        else if (!strcmp(v, "connect"))
            handle_connect(&m);
        else if (!strcmp(v, "stat") && m.n >= 3) {
            struct stat st;
            send_msg(-1, "stat", m.f[1], fstatat(AT_FDCWD, m.f[2], &st, AT_SYMLINK_NOFOLLOW) == 0 ? "1" : "0", NULL);
        } else if (!strcmp(v, "signal") && m.n >= 2 && payload > 0)
            kill(payload, atoi(m.f[1]));
        else if (!strcmp(v, "kill"))
            kill_payload_and_execs();
        for (int i = 0; i < m.nfds && strcmp(v, "exec") != 0; i++)
            close(m.fds[i]);
    }
}

_Noreturn void init_main(int syncfd, struct cgroup_fds *cg, const struct pin *pin)
{
    /* dies with the shim; the sync pipe below closes the race where the shim died before this */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char c;
    if (read(syncfd, &c, 1) != 1)
        _exit(1);                               /* shim gone, or it failed to write our id maps */
    close(syncfd);
    unpin(pin);                                 /* started on the shim's CPU (shim.c); balanced as usual from here */
    fcntl(CTL, F_SETFD, FD_CLOEXEC);
    join_session_keyring();
    set_rlimits();
    sigset_t set;
    sigemptyset(&set);
    int fwd[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
        sigaddset(&set, fwd[i]);
    /* blocked signals are queued even for a namespace init without handlers, so signalfd sees them */
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        die("signalfd", "");
    umask(022);
    join_cgroups(cg);
    build_root();
    seal_root();
    mount_system();
    mount_user();
    enter_root();
    set_identity_and_network();
    send_msg(-1, "created", NULL);
    serve(sfd);
    _exit(0);
}

