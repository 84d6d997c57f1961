/* Subordinate id ranges (PROTOCOL.md "Id maps"): an unprivileged process may map only its own uid and gid
 * into a user namespace, and only with setgroups denied. newuidmap and newgidmap (Debian's uidmap, setuid
 * root) write maps that also use the caller's /etc/subuid and /etc/subgid ranges, and leave setgroups
 * allowed, so a container can drop the caller's supplementary groups. Both run from outside the namespace
 * for the pid whose namespace is mapped, at once, while that process waits. */
#include "isotest-init.h"
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* Starts `helper PID inside outside count ...` with the map's lines as arguments, its output into errfd. */
static pid_t start_helper(const char *helper, pid_t pid, const char *map, int errfd)
{
    static char buf[2][1024];
    static int which;
    char *copy = buf[which++ % 2], *argv[3 + 3 * 16], pidtext[24], *save;
    int n = 0;
    snprintf(pidtext, sizeof pidtext, "%d", (int)pid);
    snprintf(copy, sizeof buf[0], "%s", map);
    argv[n++] = (char *)helper;
    argv[n++] = pidtext;
    for (char *t = strtok_r(copy, " \n", &save); t && n < (int)(sizeof argv / sizeof argv[0]) - 1; t = strtok_r(NULL, " \n", &save))
        argv[n++] = t;
    argv[n] = NULL;
    pid_t child = fork();
    if (child == 0) {
        char *env[] = { NULL };
        dup2(errfd, 1), dup2(errfd, 2);
        close_fds_from(3);                      /* the helper is setuid root: it gets nothing of ours */
        execve(helper, argv, env);
        dprintf(2, "%s: %s", helper, strerror(errno));
        _exit(127);
    }
    return child;
}

int map_ids(pid_t pid, const struct idhelpers *h, char *why, size_t whylen)
{
    int out[2];
    why[0] = 0;
    if (pipe2(out, O_CLOEXEC) < 0)
        return snprintf(why, whylen, "pipe"), -1;
    pid_t u = start_helper(h->newuidmap, pid, h->uid_map, out[1]);
    pid_t g = u < 0 ? -1 : start_helper(h->newgidmap, pid, h->gid_map, out[1]);
    int e = errno;
    close(out[1]);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < whylen && (r = read(out[0], why + len, whylen - 1 - len)) != 0)
        if (r > 0)
            len += r;
        else if (errno != EINTR)
            break;
    why[len] = 0;
    while (len > 0 && (why[len - 1] == '\n' || why[len - 1] == ' '))
        why[--len] = 0;
    for (size_t i = 0; i < len; i++)
        if (why[i] == '\n')
            why[i] = ' ';
    close(out[0]);
    int ok = u > 0 && g > 0, st;
    pid_t kids[2] = { u, g };
    for (int i = 0; i < 2; i++)
        if (kids[i] > 0) {
            while (waitpid(kids[i], &st, 0) < 0 && errno == EINTR)
                continue;
            ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
    if (ok)
        return 0;
    if (!len)
        snprintf(why, whylen, "%s or %s failed%s", h->newuidmap, h->newgidmap, u < 0 || g < 0 ? " to start" : "");
    errno = u < 0 || g < 0 ? e : EPERM;
    return -1;
}

int unshare_mapped(const struct idhelpers *h, char *why, size_t whylen)
{
    int go[2], said[2];
    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(said, O_CLOEXEC) < 0)
        return snprintf(why, whylen, "pipe"), -1;
    pid_t self = getpid(), child = fork();
    if (child < 0)
        return snprintf(why, whylen, "fork"), -1;
    if (child == 0) {
        /* still in the parent's user namespace: the helpers run from here, for the process that unshared */
        char c, text[256];
        close(go[1]), close(said[0]);
        if (read(go[0], &c, 1) != 1)
            _exit(1);
        int rc = map_ids(self, h, text, sizeof text);
        (void)!write(said[1], text, strlen(text));
        _exit(rc < 0 ? 1 : 0);
    }
    close(go[0]), close(said[1]);
    int rc = unshare(CLONE_NEWUSER), e = errno;
    if (rc == 0)
        (void)!write(go[1], "1", 1);
    close(go[1]);
    ssize_t n, len = 0;
    while (len + 1 < (ssize_t)whylen && (n = read(said[0], why + len, whylen - 1 - len)) != 0)
        if (n > 0)
            len += n;
        else if (errno != EINTR)
            break;
    why[len] = 0;
    close(said[0]);
    int st;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR)
        continue;
    if (rc < 0)
        return errno = e, snprintf(why, whylen, "unshare"), -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return errno = EPERM, -1;
    return 0;
}

/* `userns NEWUIDMAP NEWGIDMAP UID_MAP GID_MAP` as the first datagram: not a container but the maker of the engine's
 * shared user namespace for these maps (PROTOCOL.md "Shared user namespaces"). It unshares one, has the helpers map
 * it, sends `made` with /proc/self/ns/user and exits: the engine's descriptor keeps the namespace, and every
 * container with these maps joins it (joinuser), so the helpers run once per engine and maps, not per start.
 * Without subordinate ranges the helpers are `-`: the maps are one id each, the caller's own, which a process may
 * write for its own new namespace once setgroups is denied (what the shim does for a container without ranges). */
_Noreturn void userns_main(struct msg *first)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (first->n != 5)
        errno = EINVAL, die("spec", "userns: 4 values expected (newuidmap newgidmap uid_map gid_map)");
    struct idhelpers h = { first->f[1], first->f[2], first->f[3], first->f[4] };
    char why[256];
    if (!strcmp(h.newuidmap, "-") && !strcmp(h.newgidmap, "-")) {
        if (unshare(CLONE_NEWUSER) < 0)
            die("userns", "unshare");
        if (write_file("/proc/self/setgroups", "deny") < 0 || write_file("/proc/self/uid_map", h.uid_map) < 0 ||
            write_file("/proc/self/gid_map", h.gid_map) < 0)
            die("uidmap", h.uid_map);
    } else if (unshare_mapped(&h, why, sizeof why) < 0) {
        die("idmap", why);
    }
    int fd = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("userns", "/proc/self/ns/user");
    send_msg(fd, "made", NULL);
    _exit(0);
}
