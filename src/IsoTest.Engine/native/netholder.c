/* The network holder (PROTOCOL.md "Network holder"): rootless, the engine's user namespace and the maker of
 * every namespace its networks need. It unshares a user namespace (the engine's uid and gid as 0; with
 * subordinate ranges, mapped by newuidmap/newgidmap with the ranges from 1), then
 * serves one request at a time; each is done by a short-lived child, so the holder itself never leaves
 * its namespaces:
 *   bridge          -> a network namespace owned by the holder's user namespace (a network's bridge lives there),
 *                      with a netfilter socket bound there (an outbound network's masquerade) and the holder's
 *                      user namespace (slirp4netns joins it to reach the namespace)
 *   member uid_map gid_map -> a user namespace, child of the holder's, with these maps (ids of the holder's
 *                      namespace), and a network namespace owned by it (the container joins both; see shim.c)
 *   listen addr port + fd (a network namespace) -> a TCP socket listening there
 *   exit            -> exits (the engine is being disposed; EOF does the same)
 * Replies: `made` + fds, or `failed` stage errno. The engine holds what it gets; the holder dies with the
 * engine (PR_SET_PDEATHSIG, EOF on fd 3), so nothing outlives a kill -9. */
#include "isotest-init.h"
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/netlink.h>

/* One datagram with up to four descriptors (send_msg carries one). */
static void send_fds(const int *fds, int nfds, const char *a, const char *b)
{
    char out[64];
    size_t la = strlen(a) + 1, lb = b ? strlen(b) + 1 : 0;
    memcpy(out, a, la);
    if (b)
        memcpy(out + la, b, lb);
    struct iovec iov = { out, la + lb };
    union { struct cmsghdr h; char b[CMSG_SPACE(4 * sizeof(int))]; } ctrl = { 0 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.b, .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
    ctrl.h = (struct cmsghdr){ .cmsg_len = CMSG_LEN(nfds * sizeof(int)), .cmsg_level = SOL_SOCKET, .cmsg_type = SCM_RIGHTS };
    memcpy(CMSG_DATA(&ctrl.h), fds, nfds * sizeof(int));
    while (sendmsg(CTL, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
        continue;
}

static _Noreturn void child_fail(const char *stage)
{
    send_msg(-1, "failed", stage, num(errno), NULL);
    _exit(1);
}

/* In the child, now in the namespaces it made: the namespace descriptors and netlink sockets bound there
 * (member: net, rtnetlink, user; bridge: net, rtnetlink, netfilter, user). */
static _Noreturn void send_made(int member)
{
    int fds[4], n = 0;
    if ((fds[n++] = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
        child_fail("open");
    if ((fds[n++] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) < 0)
        child_fail("netlink");
    if (!member && (fds[n++] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER)) < 0)
        child_fail("netlink");
    if ((fds[n++] = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC)) < 0)
        child_fail("open");
    send_fds(fds, n, "made", NULL);
    _exit(0);
}

static void make(int member, const char *uid_map, const char *gid_map)
{
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
        send_msg(-1, "failed", "pipe", num(errno), NULL);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        /* CLONE_NEWUSER first (the kernel orders it so): the new network namespace belongs to the new user namespace */
        if (unshare(CLONE_NEWNET | (member ? CLONE_NEWUSER : 0)) < 0)
            child_fail("unshare");
        (void)!write(ready[1], "1", 1);
        if (read(go[0], &c, 1) != 1)
            _exit(1);                           /* the holder could not write the maps and said why */
        if (lo_up() < 0)
            child_fail("lo");
        send_made(member);
    }
    close(ready[1]), close(go[0]);
    char c, path[64];
    int ok = pid > 0 && read(ready[0], &c, 1) == 1;
    if (ok && member) {
        /* from the holder, the parent user namespace, where it holds CAP_SETUID and CAP_SETGID: any of its
         * ids may be mapped, and setgroups stays as the holder's own (allowed with subordinate ranges) */
        const char *maps[][2] = { { "uid_map", uid_map }, { "gid_map", gid_map } };
        for (int i = 0; i < 2 && ok; i++) {
            snprintf(path, sizeof path, "/proc/%d/%s", pid, maps[i][0]);
            if (write_file(path, maps[i][1]) < 0) {
                send_msg(-1, "failed", "uidmap", num(errno), NULL);
                ok = 0;
            }
        }
    }
    if (ok)
        (void)!write(go[1], "1", 1);
    close(go[1]), close(ready[0]);
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            continue;
    else
        send_msg(-1, "failed", "fork", num(errno), NULL);
}

static void listen_in(int netns, const char *addr, const char *port)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
        int s, one = 1;
        if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
            errno = EINVAL, child_fail("address");
        if (setns(netns, CLONE_NEWNET) < 0)
            child_fail("setns");
        if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 512) < 0)
            child_fail("listen");
        send_fds(&s, 1, "made", NULL);
        _exit(0);
    }
    if (pid < 0)
        send_msg(-1, "failed", "fork", num(errno), NULL);
    else
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            continue;
}

_Noreturn void holder_main(struct msg *first)
{
    static struct msg m;
    char map[64];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (first->n == 5) {
        /* subordinate ranges: newuidmap/newgidmap map U (the engine's uid and gid as 0, the ranges from 1) */
        struct idhelpers h = { first->f[1], first->f[2], first->f[3], first->f[4] };
        char why[256];
        if (unshare_mapped(&h, why, sizeof why) < 0)
            die("idmap", why);
    } else {
        /* an unprivileged process maps only its own ids, and only once setgroups is denied */
        if (first->n != 1)
            errno = EINVAL, die("spec", "netholder: 0 or 4 values (newuidmap newgidmap uid_map gid_map)");
        if (unshare(CLONE_NEWUSER) < 0)
            die("userns", "unshare");
        if (write_file("/proc/self/setgroups", "deny") < 0)
            die("uidmap", "setgroups");
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        if (write_file("/proc/self/uid_map", map) < 0)
            die("uidmap", map);
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        if (write_file("/proc/self/gid_map", map) < 0)
            die("uidmap", map);
    }
    send_msg(-1, "ready", NULL);
    while (recv_msg(&m)) {
        if (m.n == 1 && !strcmp(m.f[0], "exit"))
            break;
        else if (m.n == 1 && !strcmp(m.f[0], "bridge"))
            make(0, NULL, NULL);
        else if (m.n == 3 && !strcmp(m.f[0], "member"))
            make(1, m.f[1], m.f[2]);
        else if (m.n == 3 && !strcmp(m.f[0], "listen") && m.nfds == 1)
            listen_in(m.fds[0], m.f[1], m.f[2]);
        else
            send_msg(-1, "failed", "request", num(EINVAL), NULL);
        for (int i = 0; i < m.nfds; i++)
            close(m.fds[i]);
    }
    _exit(0);
}
