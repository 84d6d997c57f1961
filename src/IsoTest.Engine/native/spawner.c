/* The spawner (PROTOCOL.md, "The spawner"): one per engine process, started by the engine as
 * `isotest-init spawn-server` with /dev/null on fds 0-2 and its request socket on fd 3. Each request
 * carries one agent's descriptors, in order; the spawner forks, puts them on fds 0, 1, 2, ... and
 * execs this program as that agent's shim, then answers `pid N` or `err ERRNO`.
 *
 * Why a process in between: the engine holds ~3 descriptors per live container, and whatever it
 * spawns itself copies its whole descriptor table at clone and closes each descriptor again at
 * exec. Measured here (a C program, posix_spawn + exec + exit of a no-op): 1.1 ms with no other
 * descriptors open, 7.4 ms with 12,000, what 4,000 live containers hold. This process holds four. */
#include "isotest-init.h"
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define MAXSPAWNFDS 8           /* an agent gets at most 6 (PROTOCOL.md) */

/* The shims are our children: reaped as they exit (the engine learns of an exit from its control socket). */
static void reap(int sig)
{
    (void)sig;
    int e = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        continue;
    errno = e;
}

/* In the forked child: the received descriptors onto 0..n-1, nothing else open, then the shim. */
static _Noreturn void become_shim(const char *self, int *fds, int n)
{
    /* Above every target first, so that placing one never overwrites another still to be placed. */
    for (int i = 0; i < n; i++)
        if ((fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64)) < 0)
            _exit(127);
    for (int i = 0; i < n; i++)
        if (dup2(fds[i], i) < 0)                /* dup2 clears close-on-exec on the target */
            _exit(127);
    close_fds_from(n);
    /* The shim sets this again first thing; here it already covers the moments before its exec. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *argv[] = { (char *)self, NULL }, *envp[] = { NULL };
    execve(self, argv, envp);
    _exit(127);                                 /* the engine sees EOF on the agent's control socket */
}

int spawner_main(const char *self)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);           /* the engine's loop thread dies -> so do we, then every shim */
    close_fds_from(CTL + 1);
    struct sigaction sa = { .sa_handler = reap, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        return 1;
    for (;;) {
        char buf[64];
        int fds[MAXSPAWNFDS], nfds = 0;
        struct iovec iov = { buf, sizeof buf };
        union { struct cmsghdr h; char b[CMSG_SPACE(MAXSPAWNFDS * sizeof(int))]; } ctrl;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.b, .msg_controllen = sizeof ctrl.b };
        ssize_t r;
        while ((r = recvmsg(CTL, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;                           /* EOF: the engine is done, or gone */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            for (size_t i = 0; c->cmsg_type == SCM_RIGHTS && i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
                memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        int err = nfds == 0 || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || r != 6 || memcmp(buf, "spawn", 6) ? EINVAL : 0;
        pid_t pid = err ? -1 : fork();
        if (pid == 0)
            become_shim(self, fds, nfds);
        if (pid < 0 && !err)
            err = errno;
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        char out[32];
        int len = err ? snprintf(out, sizeof out, "err%c%d", 0, err) : snprintf(out, sizeof out, "pid%c%d", 0, (int)pid);
        while (send(CTL, out, (size_t)len + 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
            continue;
    }
}
