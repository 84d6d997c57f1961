/* The filer (PROTOCOL.md "Files of a running container (rootless)", Native/NamespaceTreeCalls.cs): rootless, the
 * engine copies files into and out of a running container as the caller, and the kernel refuses it any directory of
 * the container the caller does not own (a server's data directory owned by uid 999 inside is subordinate uid
 * 100998 on the host). Rootless Docker's daemon does `docker cp` as root of the container's user namespace; so does
 * this: it joins the container's user namespace (fd 5), where it holds every capability over the ids that namespace
 * maps and none over the host's, and makes one system call per request on descriptors the engine sends. Path
 * resolution stays the engine's (Native/LayerTree.cs): `open` resolves only inside the root it is given
 * (RESOLVE_IN_ROOT), every other request takes one component, never followed when it is a symlink. It runs in the
 * host's PID and mount namespaces, so no process of the container can see or signal it, and is not dumpable, so
 * none can ptrace it or open its descriptors through /proc. Reply: `ok [VALUES...]` (with a descriptor for `open`
 * and `openat`) or `err ERRNO`. */
#include "isotest-init.h"
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

/* One component: what a *at call may be given without resolving a path (the engine resolved the directory). */
static int component(const char *name)
{
    return name[0] && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/') ? 0 : (errno = EINVAL, -1);
}

static unsigned long long number(const char *s, int base)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (*s == 0 || *end != 0)
        errno = EINVAL;
    return v;
}

static void reply(int rc, int fd)
{
    if (rc < 0)
        send_msg(-1, "err", num(errno), NULL);
    else
        send_msg(fd, "ok", NULL);
    if (fd >= 0)
        close(fd);
}

/* `stat NAME` (NAME "." for the directory itself): the fields the engine's TreeEntry holds, and a symlink's target. */
static void stat_one(int dir, const char *name)
{
    struct stat st;
    static char link[4096];
    int self = !strcmp(name, ".");
    if ((!self && component(name) < 0) || fstatat(dir, self ? "" : name, &st, AT_SYMLINK_NOFOLLOW | (self ? AT_EMPTY_PATH : 0)) < 0) {
        reply(-1, -1);
        return;
    }
    ssize_t n = S_ISLNK(st.st_mode) ? readlinkat(dir, name, link, sizeof link - 1) : 0;
    link[n < 0 ? 0 : n] = 0;
    /* num() rotates six buffers: eight numbers need their own */
    long long v[8] = { st.st_mode, st.st_size, st.st_uid, st.st_gid, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, major(st.st_rdev), minor(st.st_rdev) };
    char f[8][24];
    for (int i = 0; i < 8; i++)
        snprintf(f[i], sizeof f[i], "%lld", v[i]);
    send_msg(-1, "ok", f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], link, NULL);
}

/* One request; the descriptors it came with are closed by the caller. */
static void serve(struct msg *m)
{
    const char *op = m->f[0];
    int d0 = m->nfds > 0 ? m->fds[0] : -1, d1 = m->nfds > 1 ? m->fds[1] : -1, rc;
    static char proc[64 + 4096];                /* /proc/self/fd/N/ and one name */
    static unsigned char value[64 * 1024];
    ssize_t len;
    if (d0 < 0) {
        errno = EBADF, reply(-1, -1);
        return;
    }
    if (!strcmp(op, "open") && m->n == 3) {
        /* `open PATH FLAGS`: the only request that resolves a path, and only inside the root it came with */
        struct open_how how = { .flags = number(m->f[2], 10) | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
        int fd = errno ? -1 : openat2_retry(d0, m->f[1], &how);
        reply(fd, fd);
    } else if (!strcmp(op, "openat") && m->n == 4) {
        /* `openat NAME FLAGS MODE`: a file to write or read, never through a symlink */
        int flags = number(m->f[2], 10), mode = errno ? 0 : number(m->f[3], 8);
        int fd = errno || component(m->f[1]) < 0 ? -1 : openat(d0, m->f[1], flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
        reply(fd, fd);
    } else if (!strcmp(op, "mkdir") && m->n == 3) {
        int mode = number(m->f[2], 8);
        reply(errno || component(m->f[1]) < 0 ? -1 : mkdirat(d0, m->f[1], mode), -1);
    } else if (!strcmp(op, "symlink") && m->n == 3) {
        /* `symlink NAME TARGET`: the target is stored as written; only the container ever resolves it */
        reply(component(m->f[1]) < 0 ? -1 : symlinkat(m->f[2], d0, m->f[1]), -1);
    } else if (!strcmp(op, "link") && m->n == 3 && d1 >= 0) {
        /* `link NAME TARGETNAME` with the target's directory first, the link's second */
        reply(component(m->f[1]) < 0 || component(m->f[2]) < 0 ? -1 : linkat(d0, m->f[2], d1, m->f[1], 0), -1);
    } else if (!strcmp(op, "mknod") && m->n == 4) {
        unsigned long long mode = number(m->f[2], 8), dev = errno ? 0 : number(m->f[3], 10);
        reply(errno || component(m->f[1]) < 0 ? -1 : mknodat(d0, m->f[1], mode, dev), -1);
    } else if (!strcmp(op, "chown") && m->n == 4) {
        unsigned long long uid = number(m->f[2], 10), gid = errno ? 0 : number(m->f[3], 10);
        reply(errno || component(m->f[1]) < 0 ? -1 : fchownat(d0, m->f[1], uid, gid, AT_SYMLINK_NOFOLLOW), -1);
    } else if (!strcmp(op, "chmod") && m->n == 2) {
        /* `chmod MODE` on the O_PATH descriptor of the node itself (fchmod refuses O_PATH; its /proc link does not) */
        unsigned long long mode = number(m->f[1], 8);
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", d0);
        reply(errno ? -1 : chmod(proc, mode), -1);
    } else if (!strcmp(op, "setxattr") && m->n == 4) {
        /* `setxattr NAME ATTRIBUTE HEX` on the object itself, not a symlink's target */
        snprintf(proc, sizeof proc, "/proc/self/fd/%d/", d0);
        rc = component(m->f[1]) < 0 || strlen(proc) + strlen(m->f[1]) >= sizeof proc || (len = hex_decode(m->f[3], value, sizeof value)) < 0
            ? -1 : lsetxattr(strcat(proc, m->f[1]), m->f[2], value, len, 0);
        reply(rc, -1);
    } else if (!strcmp(op, "utimes") && m->n == 4) {
        struct timespec t[2];
        t[0].tv_sec = number(m->f[2], 10);
        t[0].tv_nsec = errno ? 0 : number(m->f[3], 10);
        t[1] = t[0];
        reply(errno || component(m->f[1]) < 0 ? -1 : utimensat(d0, m->f[1], t, AT_SYMLINK_NOFOLLOW), -1);
    } else if (!strcmp(op, "unlink") && m->n == 3) {
        /* `unlink NAME FLAGS`: FLAGS 0, or AT_REMOVEDIR for an empty directory (the engine empties it first) */
        int flags = number(m->f[2], 10);
        if (!errno && (flags & ~AT_REMOVEDIR))
            errno = EINVAL;
        reply(errno || component(m->f[1]) < 0 ? -1 : unlinkat(d0, m->f[1], flags), -1);
    } else if (!strcmp(op, "stat") && m->n == 2) {
        stat_one(d0, m->f[1]);
    } else {
        errno = EINVAL, reply(-1, -1);
    }
}

_Noreturn void filer_main(struct msg *first)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "isotest-filer");        /* in ps, and not counted as a container's shim by the leak tests */
    prctl(PR_SET_DUMPABLE, 0);                  /* no ptrace, no /proc/PID/fd from the container's ids (it is one of them) */
    if (first->n != 1)
        errno = EINVAL, die("spec", "filer: no values expected");
    if (setns(USERNS_FD, CLONE_NEWUSER) < 0 || close(USERNS_FD) < 0)
        die("userns", "setns");
    umask(0);                                   /* modes are the archive's, as given */
    static struct msg m;
    while (recv_msg(&m) && !(m.n == 1 && !strcmp(m.f[0], "exit"))) {
        if (m.overflow || m.n < 1)
            errno = EINVAL, reply(-1, -1);
        else
            serve(&m);
        for (int i = 0; i < m.nfds; i++)
            close(m.fds[i]);
    }
    _exit(0);
}
