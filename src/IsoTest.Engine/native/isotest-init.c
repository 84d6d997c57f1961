/*
 * isotest-init: the container init agent of the IsoTest engine.
 *
 * The engine cannot create namespaces itself: a .NET process is multi-threaded and the kernel refuses
 * CLONE_NEWUSER there, and a forked runtime may deadlock (DESIGN.md, "The engine"). So the engine
 * posix_spawns this program, which runs as two processes (PROTOCOL.md is the contract):
 *   shim  - reads the spec, opens cgroup files from the host's view, clones init into the new
 *           namespaces, writes the id maps (rootless), then only waits for init and reports `reaped`;
 *   init  - PID 1 of the container: builds the root filesystem, reports `created`, then serves the
 *           control socket (start, exec, connect, stat, signal, kill) and reaps every process.
 * Built with -std=gnu11 -Wall -Wextra -Werror -static; libc only; no malloc after the spec is read.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef MOUNT_ATTR_RDONLY           /* musl's <sys/mount.h> lacks the new mount API; the kernel ABI: */
#define MOUNT_ATTR_RDONLY 0x00000001
struct mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
#endif

#define CTL 3                   /* the control socket (PROTOCOL.md) */
#define NETNS_FD 4              /* with netns 2: a ready network namespace (PROTOCOL.md) */
#define MAXMSG (256 * 1024)     /* largest datagram either side sends */
#define MAXFIELDS 8192
#define MAXITEMS 256            /* mounts, files, cgroups, concurrent execs */
#define STAGE "/tmp"            /* where the private tmpfs staging area is mounted (our namespace only) */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---------------------------------------------------------------- messages */

struct msg { char buf[MAXMSG]; char *f[MAXFIELDS + 1]; int n, fds[3], nfds; }; /* f[0]: verb; f[n]: NULL */

/* Formats a number into one of a few rotating buffers, so several can appear in one send_msg call. */
static const char *num(long long v)
{
    static char bufs[6][24];
    static int next;
    char *b = bufs[next++ % 6];
    snprintf(b, sizeof bufs[0], "%lld", v);
    return b;
}

/* Sends verb + NULL-terminated fields as one datagram, with an optional descriptor (SCM_RIGHTS). */
static void send_msg(int passfd, const char *verb, ...)
{
    static char out[MAXMSG];
    size_t len = 0, l;
    va_list ap;
    va_start(ap, verb);
    for (const char *s = verb; s && len + (l = strlen(s) + 1) <= sizeof out; s = va_arg(ap, const char *))
        len += (memcpy(out + len, s, l), l);
    va_end(ap);
    struct iovec iov = { out, len };
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctrl = { 0 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.b, .msg_controllen = sizeof ctrl.b };
    if (passfd < 0)
        mh.msg_control = NULL, mh.msg_controllen = 0;
    ctrl.h = (struct cmsghdr){ .cmsg_len = CMSG_LEN(sizeof(int)), .cmsg_level = SOL_SOCKET, .cmsg_type = SCM_RIGHTS };
    memcpy(CMSG_DATA(&ctrl.h), &passfd, sizeof(int));
    /* a failure means the engine is gone, which the EOF on the next read handles */
    while (sendmsg(CTL, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
        continue;
}

/* Receives one datagram and splits it into fields. Returns 0 on EOF (the engine is gone). */
static int recv_msg(struct msg *m)
{
    struct iovec iov = { m->buf, sizeof m->buf - 1 };
    union { struct cmsghdr h; char b[CMSG_SPACE(3 * sizeof(int))]; } ctrl;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.b, .msg_controllen = sizeof ctrl.b };
    ssize_t r;
    while ((r = recvmsg(CTL, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        continue;
    if (r <= 0)
        return 0;
    m->nfds = m->n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        for (size_t i = 0; c->cmsg_type == SCM_RIGHTS && i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (m->nfds < 3)
                m->fds[m->nfds++] = fd;
            else
                close(fd);
        }
    m->buf[r] = 0;
    for (char *p = m->buf; p < m->buf + r && m->n < MAXFIELDS; p += strlen(p) + 1)
        m->f[m->n++] = p;
    m->f[m->n] = NULL;
    return 1;
}

/* A socket closed with unread data makes the engine's next recv fail once with ECONNRESET. The
 * shim, the last holder, drops what init never read (a `start` after an `error`, say) before it
 * exits, so the engine normally reads on to EOF. */
static void drain(void)
{
    for (char c; recv(CTL, &c, 1, MSG_DONTWAIT | MSG_TRUNC) > 0;)
        continue;
}

/* Reports a setup failure (errno is the cause) and exits: the engine turns it into an exception. */
static _Noreturn void die(const char *stage, const char *detail)
{
    send_msg(-1, "error", stage, num(errno), detail ? detail : "", NULL);
    if (getpid() != 1)
        drain();                                /* the shim, before it cloned init */
    _exit(1);
}

/* ---------------------------------------------------------------- the spec */

struct mnt { char kind; const char *src, *dst, *opt; int ro, srcfd; };
struct copy { const char *src, *dst; mode_t mode; uid_t uid; gid_t gid; int srcfd; };

static struct {
    const char *root, *uid_map, *gid_map, *hostname, *cg2, *cg1[MAXITEMS];
    int readonly, netns, nmnts, nfiles, ncg1;
    uid_t uid;
    gid_t gid;
    struct mnt mnts[MAXITEMS];
    struct copy files[MAXITEMS];
} S = { .root = "host", .netns = 1 };

static struct msg spec_msg;     /* the spec's strings point into this buffer for the agent's lifetime */

static void parse_spec(void)
{
    static const struct { const char *key; int n; } recs[] = {
        { "root", 1 }, { "readonly", 1 }, { "userns", 2 }, { "netns", 1 }, { "hostname", 1 },
        { "uid", 1 }, { "gid", 1 }, { "bind", 3 },
        { "tmpfs", 3 }, { "cow", 2 }, { "file", 5 }, { "cg1", 1 }, { "cg2", 1 },
    };
    struct msg *m = &spec_msg;
    if (!recv_msg(m))
        _exit(1);
    errno = EINVAL;
    if (m->n < 1 || strcmp(m->f[0], "spec") != 0)
        die("spec", m->n ? m->f[0] : "");
    for (int i = 1; i < m->n;) {
        const char *k = m->f[i];
        int n = -1;
        for (size_t r = 0; r < sizeof recs / sizeof recs[0]; r++)
            if (strcmp(k, recs[r].key) == 0)
                n = recs[r].n;
        errno = EINVAL;
        if (n < 0 || i + n >= m->n)             /* unknown key, or too few values */
            die("spec", k);
        char **v = &m->f[i + 1];
        if (!strcmp(k, "root")) S.root = v[0];
        else if (!strcmp(k, "readonly")) S.readonly = atoi(v[0]);
        else if (!strcmp(k, "userns")) { S.uid_map = v[0]; S.gid_map = v[1]; }
        else if (!strcmp(k, "netns")) S.netns = atoi(v[0]);
        else if (!strcmp(k, "hostname")) S.hostname = v[0];
        else if (!strcmp(k, "uid")) S.uid = strtoul(v[0], NULL, 10);
        else if (!strcmp(k, "gid")) S.gid = strtoul(v[0], NULL, 10);
        else if (!strcmp(k, "cg1") && S.ncg1 < MAXITEMS) S.cg1[S.ncg1++] = v[0];
        else if (!strcmp(k, "cg2")) S.cg2 = v[0];
        else if (!strcmp(k, "file") && S.nfiles < MAXITEMS)
            S.files[S.nfiles++] = (struct copy){ v[0], v[1], strtoul(v[2], NULL, 8),
                                                 strtoul(v[3], NULL, 10), strtoul(v[4], NULL, 10), -1 };
        else if (S.nmnts < MAXITEMS) {
            struct mnt *mt = &S.mnts[S.nmnts++];
            *mt = (struct mnt){ .kind = k[0], .srcfd = -1 };
            if (k[0] == 'b') { mt->src = v[0]; mt->dst = v[1]; mt->ro = !strcmp(v[2], "ro"); }
            else if (k[0] == 't') { mt->dst = v[0]; mt->opt = v[1]; mt->ro = !strcmp(v[2], "ro"); }
            else { mt->src = v[0]; mt->dst = v[1]; }
        }
        i += 1 + n;
    }
}

/* ---------------------------------------------------------------- path helpers (init, before pivot) */

static int rootfd = -1;         /* O_PATH fd of the new root while it is being built */

static const char *fdpath(char buf[32], int fd)
{
    snprintf(buf, 32, "/proc/self/fd/%d", fd);
    return buf;
}

/* Opens path (relative to the new root) with RESOLVE_IN_ROOT, so an absolute symlink inside an image
 * (var/run -> /run) resolves inside the container instead of sending a mount onto the host. */
static int open_in_root(const char *path, int flags)
{
    struct open_how how = { .flags = flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
    while (*path == '/')
        path++;
    if (!*path)
        path = ".";
    return syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* Opens a mount target inside the new root, creating it if missing (mkdir -p; the last component a
 * directory when dir, else an empty file). Each component is created in a parent that was itself
 * resolved inside the root. Returns an O_PATH fd or dies. */
static int target(const char *path, int dir)
{
    char parent[4096];
    int fd = open_in_root(path, O_PATH);
    if (fd >= 0 || errno != ENOENT || snprintf(parent, sizeof parent, "%s", path) >= (int)sizeof parent)
        return fd >= 0 ? fd : (die("mount", path), -1);
    char *slash = strrchr(parent, '/');
    while (slash && slash > parent && !slash[1])        /* trailing slashes */
        *slash = 0, slash = strrchr(parent, '/');
    const char *name = slash ? slash + 1 : parent;
    int pfd = slash && slash > parent ? (*slash = 0, target(parent, 1)) : open_in_root(".", O_PATH | O_DIRECTORY);
    int r = dir ? mkdirat(pfd, name, 0755) : openat(pfd, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (r > 0 && !dir)
        close(r);
    close(pfd);
    if ((r < 0 && errno != EEXIST) || (fd = open_in_root(path, O_PATH)) < 0)
        die("mount", path);
    return fd;
}

/* Mounts onto dst inside the new root and returns a fresh O_PATH fd of it: a fresh lookup, because a
 * descriptor opened before the mount still points at the directory underneath. */
static int mount_in(const char *src, const char *dst, int dir, const char *type, unsigned long flags,
                    const char *data)
{
    char p[32];
    int fd = target(dst, dir);
    if (mount(src, fdpath(p, fd), type, flags, data) < 0)
        die("mount", dst);
    close(fd);
    if ((fd = open_in_root(dst, O_PATH)) < 0)
        die("mount", dst);
    return fd;
}

/* Makes a mount (and everything below it) read-only. mount_setattr only sets the flag; the old
 * remount path must repeat the source's locked flags (nosuid, nodev, noexec, atime), or a user
 * namespace gets EPERM for trying to clear them. */
static void make_ro(int fd, const char *what)
{
    struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) == 0)
        return;
    if (errno != ENOSYS)
        die("mount", what);
    char p[32];
    struct statvfs sv;
    if (statvfs(fdpath(p, fd), &sv) < 0)
        die("mount", what);
    unsigned long keep = 0;
    static const unsigned long map[][2] = { { ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV },
        { ST_NOEXEC, MS_NOEXEC }, { ST_NOATIME, MS_NOATIME }, { ST_NODIRATIME, MS_NODIRATIME },
        { ST_RELATIME, MS_RELATIME } };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (sv.f_flag & map[i][0])
            keep |= map[i][1];
    if (mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) < 0)
        die("mount", what);
}

/* A read-only recursive bind of a host path onto a path we created (fallback views of the host). */
static void bind_ro(const char *host, const char *dst, unsigned long rec)
{
    int fd = -1;
    if (mount(host, dst, NULL, MS_BIND | rec, NULL) < 0 || (fd = open(dst, O_PATH | O_CLOEXEC)) < 0)
        die("root", host);
    make_ro(fd, host);
    close(fd);
}

/* Overlay of lower with a private upper/work pair on the staging tmpfs, mounted at target (a host
 * path we created on the staging area). userxattr: a user namespace may not write trusted.* xattrs. */
static int overlay(const char *lower, const char *target_path)
{
    static int layers;
    char up[64], work[64], opts[8192];
    snprintf(up, sizeof up, STAGE "/u%d", layers);
    snprintf(work, sizeof work, STAGE "/w%d", layers++);
    if (mkdir(up, 0755) < 0 || mkdir(work, 0755) < 0)
        return -1;
    /* The merged root takes the upper dir's owner and mode: give it the lower dir's, or a data dir
     * (PostgreSQL's, 0700 and owned by its user) looks root-owned and 0755 through the overlay. An
     * owner unmapped in a user namespace cannot be given (EINVAL); the mode still is. */
    struct stat st;
    if (stat(lower, &st) == 0) {
        if (chown(up, st.st_uid, st.st_gid) < 0 && errno != EINVAL && errno != EPERM)
            return -1;
        if (chmod(up, st.st_mode & 07777) < 0)
            return -1;
    }
    snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s%s", lower, up, work,
             S.uid_map ? ",userxattr" : "");
    return mount("overlay", target_path, "overlay", 0, opts);
}

/* ---------------------------------------------------------------- init: setup steps */

/* Opens every host-side source now, before the staging tmpfs covers /tmp, where tests like to keep
 * root directories and bind sources; mounts then name them as /proc/self/fd/N. */
static int root_srcfd = -1;

static void open_sources(void)
{
    if (strcmp(S.root, "host") != 0 && (root_srcfd = open(S.root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        die("root", S.root);
    for (int i = 0; i < S.nmnts; i++)
        if (S.mnts[i].src && (S.mnts[i].srcfd = open(S.mnts[i].src, O_PATH | O_CLOEXEC)) < 0)
            die("mount", S.mnts[i].src);
    for (int i = 0; i < S.nfiles; i++)
        if ((S.files[i].srcfd = open(S.files[i].src, O_RDONLY | O_CLOEXEC)) < 0)
            die("file", S.files[i].src);
}

/* Rootless host root: overlayfs refuses a lower dir with locked submounts in a user namespace
 * (EINVAL for lowerdir=/, /var holding /var/lib/docker, ...). So such a directory becomes a tmpfs
 * carrying one overlay per entry, recursively; symlinks are recreated, files bound read-only. Only
 * past a few levels does a directory fall back to a read-only recursive bind. */
static void mirror_dir(const char *host, const char *dst, int depth)
{
    if (depth > 0 && overlay(host, dst) == 0)
        return;
    /* A directory we may not list (dockerd's /var/lib/docker, 0710 root, full of its mounts) is shown
     * as it is on the host: read-only, and just as unreadable. */
    DIR *d = depth < 4 ? opendir(host) : NULL;
    if (!d || mount("tmpfs", dst, "tmpfs", 0, "mode=0755") < 0) {
        if (d)
            closedir(d);
        bind_ro(host, dst, MS_REC);
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        static const char *skip[] = { ".", "..", "proc", "sys", "dev", "tmp", "run" };
        int s = 0;
        for (size_t i = 0; i < (depth ? 2 : sizeof skip / sizeof skip[0]); i++)
            s |= !strcmp(e->d_name, skip[i]);
        char h[4096], p[4096], link[4096];
        struct stat st;
        snprintf(h, sizeof h, "%s/%s", depth ? host : "", e->d_name);
        snprintf(p, sizeof p, "%s/%s", dst, e->d_name);
        if (s || lstat(h, &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            ssize_t l = readlink(h, link, sizeof link - 1);
            if (l < 0 || (link[l] = 0, symlink(link, p) < 0))
                die("root", h);
        } else if (S_ISDIR(st.st_mode)) {
            if (mkdir(p, st.st_mode & 07777) < 0)
                die("root", p);
            mirror_dir(h, p, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            if (fd < 0)
                die("root", p);
            close(fd);
            bind_ro(h, p, 0);
        }
    }
    closedir(d);
}

/* The root: an overlay (host / or a directory) with its upper dir on the staging tmpfs, or a read-only
 * recursive bind. The staging tmpfs exists only in this mount namespace, so the writable layer
 * vanishes with the container and nothing touches the host's disk. */
static void build_root(void)
{
    const char *r = STAGE "/r";
    char src[32];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)   /* no mount may propagate out */
        die("mount", "/");
    open_sources();
    if (mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0 || mkdir(r, 0755) < 0)
        die("mount", STAGE);
    const char *lower = root_srcfd >= 0 ? fdpath(src, root_srcfd) : "/";
    if (root_srcfd < 0 && S.uid_map) {
        mirror_dir("/", r, 0);
        static const char *own[] = { "proc", "sys", "dev", "tmp", "run" };
        char p[64];
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            if (snprintf(p, sizeof p, "%s/%s", r, own[i]), mkdir(p, 0755) < 0)
                die("root", p);
    } else if (overlay(lower, r) < 0) {
        die("root", S.root);
    }
    if ((rootfd = open(r, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        die("root", r);
}

/* A read-only root is built writable like any other, so that every mount point can be made first
 * (a directory root may lack /proc, a tmpfs target may be new); then the root and what lies under it
 * turn read-only, and the system and user mounts go on top, writable where asked (Docker's order). */
static void seal_root(void)
{
    if (!S.readonly)
        return;
    static const char *sys[] = { "proc", "dev", "sys", "tmp", "run" };
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (i < 3 || !strcmp(S.root, "host"))
            close(target(sys[i], 1));
    for (int i = 0; i < S.nmnts; i++) {
        struct stat st;
        int dir = S.mnts[i].kind != 'b' || (fstat(S.mnts[i].srcfd, &st) == 0 && S_ISDIR(st.st_mode));
        close(target(S.mnts[i].dst, dir));
    }
    make_ro(rootfd, S.root);
}

/* /dev: a small tmpfs with the harmless devices, a private devpts instance and /dev/shm. As root the
 * nodes are made with mknod (one syscall each, where a bind mount costs a mount); in a user namespace
 * mknod is refused, so they are the host's nodes bind-mounted. */
static void mount_dev(void)
{
    int dev = mount_in("tmpfs", "dev", 1, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k");
    static const struct { const char *name; unsigned major, minor; } nodes[] = {
        { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 },
        { "tty", 5, 0 } };
    char host[64], dst[64];
    mode_t mask = umask(0);
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        if (!S.uid_map && mknodat(dev, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) == 0)
            continue;
        snprintf(host, sizeof host, "/dev/%s", nodes[i].name);
        snprintf(dst, sizeof dst, "dev/%s", nodes[i].name);
        if (access(host, F_OK) == 0)
            close(mount_in(host, dst, 0, NULL, MS_BIND, NULL));
    }
    umask(mask);
    /* no gid= option: gid 5 (tty) is usually unmapped in a user namespace and the mount would fail */
    close(mount_in("devpts", "dev/pts", 1, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"));
    close(mount_in("tmpfs", "dev/shm", 1, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"));
    static const char *links[][2] = { { "pts/ptmx", "ptmx" }, { "/proc/self/fd", "fd" },
        { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" } };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlinkat(links[i][0], dev, links[i][1]) < 0)
            die("mount", "/dev");
    close(dev);
}

/* /proc, /dev, /sys, /tmp, /run, then Docker's masked and read-only paths over the new procfs/sysfs. */
static void mount_system(void)
{
    close(mount_in("proc", "proc", 1, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
    mount_dev();
    /* sysfs needs a network namespace owned by our user namespace; with the host's network (netns=0)
     * rootless gets EPERM, so show the host's /sys read-only instead */
    char p[32];
    int fd = target("sys", 1);
    if (mount("sysfs", fdpath(p, fd), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        int s = mount_in("/sys", "sys", 1, NULL, MS_BIND | MS_REC, NULL);
        make_ro(s, "/sys");
        close(s);
    }
    close(fd);
    if (!strcmp(S.root, "host")) {
        close(mount_in("tmpfs", "tmp", 1, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
        close(mount_in("tmpfs", "run", 1, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
    }
    static const char *masked[] = { "proc/acpi", "proc/asound", "proc/interrupts", "proc/kcore", "proc/keys",
        "proc/latency_stats", "proc/timer_list", "proc/timer_stats", "proc/sched_debug", "proc/scsi",
        "sys/firmware", "sys/devices/virtual/powercap" };
    for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
        struct stat st;
        if ((fd = open_in_root(masked[i], O_PATH)) < 0)
            continue;                           /* absent on this kernel: nothing to hide */
        fstat(fd, &st);
        close(fd);
        if (S_ISDIR(st.st_mode))
            close(mount_in("tmpfs", masked[i], 1, "tmpfs", MS_RDONLY, "size=0"));
        else
            close(mount_in("/dev/null", masked[i], 0, NULL, MS_BIND, NULL));
    }
    static const char *ro[] = { "proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger" };
    for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
        if ((fd = open_in_root(ro[i], O_PATH)) < 0)
            continue;
        if (mount(fdpath(p, fd), p, NULL, MS_BIND | MS_REC, NULL) < 0)
            die("mount", ro[i]);
        close(fd);
        fd = open_in_root(ro[i], O_PATH);
        make_ro(fd, ro[i]);
        close(fd);
    }
}

/* Copies a host file into the container. Rootless, the container's root cannot create files in
 * directories owned by unmapped host ids (root's /etc): then the copy is made on the staging tmpfs
 * and bind-mounted over the existing target. */
static void copy_in(struct copy *c, int i)
{
    char dir[4096], staged[64];
    snprintf(dir, sizeof dir, "%s", c->dst);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int dfd = slash && dir[0] ? target(dir, 1) : open_in_root(".", O_PATH | O_DIRECTORY);
    const char *base = slash ? slash + 1 : dir;
    int out = openat(dfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
        snprintf(staged, sizeof staged, STAGE "/f%d", i);
        out = open(staged, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    } else {
        staged[0] = 0;
    }
    if (out < 0)
        die("file", c->dst);
    ssize_t n;
    for (char buf[65536]; (n = read(c->srcfd, buf, sizeof buf)) > 0;)
        if (write(out, buf, n) != n)
            die("file", c->dst);
    if (n < 0 || fchmod(out, c->mode) < 0 || fchown(out, c->uid, c->gid) < 0)
        die("file", c->dst);
    close(out);
    close(dfd);
    close(c->srcfd);
    if (staged[0])
        close(mount_in(staged, c->dst, 0, NULL, MS_BIND, NULL));
}

/* The spec's bind/tmpfs/cow mounts in order, then file copies (they may land inside those mounts). */
static void mount_user(void)
{
    char p[32];
    for (int i = 0; i < S.nmnts; i++) {
        struct mnt *m = &S.mnts[i];
        struct stat st;
        if (m->kind == 'b') {
            fstat(m->srcfd, &st);
            int fd = mount_in(fdpath(p, m->srcfd), m->dst, S_ISDIR(st.st_mode), NULL, MS_BIND | MS_REC, NULL);
            if (m->ro)
                make_ro(fd, m->dst);
            close(fd);
        } else if (m->kind == 't') {
            close(mount_in("tmpfs", m->dst, 1, "tmpfs", MS_NOSUID | MS_NODEV | (m->ro ? MS_RDONLY : 0),
                           m->opt[0] ? m->opt : NULL));
        } else {
            int fd = target(m->dst, 1);
            char dst[32];
            if (overlay(fdpath(p, m->srcfd), fdpath(dst, fd)) < 0)
                die("mount", m->dst);
            close(fd);
        }
        close(m->srcfd);
    }
    for (int i = 0; i < S.nfiles; i++)
        copy_in(&S.files[i], i);
}

/* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves no path to the
 * host's tree (and releases the staging tmpfs except what the overlays pin). */
static void enter_root(void)
{
    if (fchdir(rootfd) < 0)
        die("pivot_root", STAGE "/r");
    close(rootfd);
    if (root_srcfd >= 0)
        close(root_srcfd);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        die("pivot_root", S.root);
    if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        die("pivot_root", "/");
}

static void set_identity_and_network(void)
{
    if (S.hostname && sethostname(S.hostname, strlen(S.hostname)) < 0)
        die("hostname", S.hostname);
    if (S.netns != 1)
        return;                                 /* the host's network, or a ready one with lo up */
    struct ifreq ifr = { 0 };
    strcpy(ifr.ifr_name, "lo");
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        die("network", "lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        die("network", "lo");
    close(s);
}

/* ---------------------------------------------------------------- init: processes */

static int cg1fds[MAXITEMS], cg2fd = -1, cg2procs = -1, cg2_need_write;

/* v1: init moves itself by writing 0 to each tasks file; cheaper than the engine writing our pid into
 * cgroup.procs (no RCU grace period on the global lock, DESIGN.md). Then a cgroup namespace, so the
 * container sees its cgroup as its root. */
static void join_cgroups(void)
{
    for (int i = 0; i < S.ncg1; i++)
        if (write(cg1fds[i], "0", 1) != 1)
            die("cgroup", S.cg1[i]);
    if (cg2_need_write && write(cg2procs, "0", 1) != 1)
        die("cgroup", S.cg2);
    for (int i = 0; i < S.ncg1; i++)
        close(cg1fds[i]);
    if (cg2fd >= 0)
        close(cg2fd), close(cg2procs);
    if (unshare(CLONE_NEWCGROUP) < 0)
        die("cgroup", "unshare");
}

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

struct execerr { char stage[8]; int err; };

/* The child shares our memory (spawn below): it leaves the failed step and errno here for the parent. */
static _Noreturn void exec_fail(struct execerr *out, const char *stage)
{
    out->err = errno;
    strncpy(out->stage, stage, sizeof out->stage - 1);
    _exit(127);
}

/* In the child: clean signal state, own session, Docker's capabilities, the requested user,
 * no_new_privs, cwd, then execve with a PATH lookup like execvpe but in the payload's own env. */
static _Noreturn void child_exec(struct execerr *err, uid_t uid, gid_t gid, const char *cwd, char **argv, char **envp)
{
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);                     /* .NET ignores SIGPIPE, and spawn keeps ignored signals */
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    if (drop_caps() < 0)
        exec_fail(err, "caps");
    /* setgroups is refused once "deny" was written to setgroups (rootless); there are none to drop */
    if ((!S.uid_map && setgroups(0, NULL) < 0) || setgid(gid) < 0 || setuid(uid) < 0)
        exec_fail(err, "user");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        exec_fail(err, "caps");
    if (chdir(cwd && *cwd ? cwd : "/") < 0)
        exec_fail(err, "chdir");
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

/* Starts a child that execs; returns its pid, or -1 with the failed step and errno in *err. The child
 * is a vfork (CLONE_VM | CLONE_VFORK, on a stack of its own): no page tables to copy and no
 * copy-on-write faults afterwards, and we resume only once it has exec'd or failed, so its report
 * is in place when we look. The stdio fds are dup'ed to 0-2 when given. */
static struct spawn_args {
    const int *stdio;
    uid_t uid;
    gid_t gid;
    const char *cwd;
    char **argv, **envp;
    struct execerr *err;
} spawn_args;

static int spawn_child(void *arg)
{
    struct spawn_args *a = arg;
    for (int i = 0; a->stdio && i < 3; i++)
        if (dup2(a->stdio[i], i) < 0)
            exec_fail(a->err, "exec");
    child_exec(a->err, a->uid, a->gid, a->cwd, a->argv, a->envp);
}

static pid_t spawn(const int *stdio, uid_t uid, gid_t gid, const char *cwd, char **argv, char **envp,
                   struct execerr *err)
{
    /* one child at a time uses it: we are suspended until it execs or exits */
    static char stack[64 * 1024] __attribute__((aligned(16)));
    *err = (struct execerr){ "", 0 };
    spawn_args = (struct spawn_args){ stdio, uid, gid, cwd, argv, envp, err };
    pid_t pid = clone(spawn_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &spawn_args);
    if (pid < 0) {
        *err = (struct execerr){ "exec", errno };
        return -1;
    }
    return err->stage[0] ? -1 : pid;           /* a failed child exits 127 and is reaped like any other */
}

static pid_t payload = -1;
static struct { pid_t pid; char id[64]; } execs[MAXITEMS];

/* What an exec failure is about: the directory for chdir, the user for a credential step, else the program. */
static const char *failed_path(const struct execerr *e, const char *cwd, uid_t uid, char **argv)
{
    if (!strcmp(e->stage, "chdir"))
        return cwd && *cwd ? cwd : "/";
    if (!strcmp(e->stage, "user"))
        return num(uid);
    return argv && argv[0] ? argv[0] : "";
}

/* Reads "cwd nenv env... argv..." from field `at` on: the command of `start` and `exec`. */
static int parse_command(struct msg *m, int at, const char **cwd, char ***env, char ***argv)
{
    static char *envp[MAXFIELDS + 1];
    int nenv = m->n > at + 1 ? atoi(m->f[at + 1]) : -1;
    if (nenv < 0 || at + 2 + nenv >= m->n)
        return -1;
    memcpy(envp, &m->f[at + 2], nenv * sizeof *envp);
    envp[nenv] = NULL;
    *cwd = m->f[at];
    *env = envp;
    *argv = &m->f[at + 2 + nenv];               /* f[n] is NULL: ends argv */
    return 0;
}

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
    pid_t pid = spawn(NULL, S.uid, S.gid, cwd, argv, env, &e);
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
    while (slot < MAXITEMS && execs[slot].pid)
        slot++;
    pid_t pid = -1;
    if (m->nfds == 3 && m->n > 4 && parse_command(m, 4, &cwd, &env, &argv) == 0 && slot < MAXITEMS)
        pid = spawn(m->fds, strtoul(m->f[2], NULL, 10), strtoul(m->f[3], NULL, 10), cwd, argv, env, &e);
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
 * port forwarding works rootless, where the engine cannot setns (DESIGN.md, Networking). */
static void handle_connect(struct msg *m)
{
    if (m->n < 3)
        return;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(m->f[2])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        send_msg(-1, "connect-failed", m->f[1], num(errno), NULL);
    } else {
        send_msg(s, "connected", m->f[1], NULL);
    }
    if (s >= 0)
        close(s);
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
        for (int i = 0; i < MAXITEMS; i++)
            if (execs[i].pid == pid) {
                send_msg(-1, "exec-exit", execs[i].id, num(st), NULL);
                execs[i].pid = 0;
            }
    }
}

static void serve(int sfd)
{
    static struct msg m;
    struct pollfd pf[2] = { { CTL, POLLIN, 0 }, { sfd, POLLIN, 0 } };
    for (;;) {
        if (poll(pf, 2, -1) < 0)
            continue;
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
        if (!recv_msg(&m)) {
            kill(-1, SIGKILL);                  /* the engine is gone: take everything down */
            _exit(1);
        }
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
        else if (!strcmp(v, "kill")) {
            kill(-1, SIGKILL);
            if (payload <= 0)
                _exit(1);                       /* nothing to report an exit for */
            /* else the payload's SIGCHLD arrives next and `exit` is reported as usual */
        }
        for (int i = 0; i < m.nfds && strcmp(v, "exec") != 0; i++)
            close(m.fds[i]);
    }
}

static _Noreturn void init_main(int syncfd)
{
    /* dies with the shim; the sync pipe below closes the race where the shim died before this */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char c;
    if (read(syncfd, &c, 1) != 1)
        _exit(1);                               /* shim gone, or it failed to write our id maps */
    close(syncfd);
    fcntl(CTL, F_SETFD, FD_CLOEXEC);
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
    join_cgroups();
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

/* ---------------------------------------------------------------- shim */

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC), e;
    ssize_t n = fd < 0 ? -1 : write(fd, text, strlen(text));
    e = errno, close(fd), errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* clone3 can place the child straight into a v2 cgroup (Linux 5.7); on any refusal, plain clone and
 * init writes 0 into cgroup.procs itself: an old kernel (ENOSYS, E2BIG) just takes that path, and a
 * refused move (EACCES: cgroup v2's common-ancestor rule) is then reported as stage "cgroup", not as
 * a namespace problem, which the plain clone would report again. Raw syscalls: glibc wraps neither
 * without a stack. */
static pid_t clone_init(uint64_t flags)
{
    if (cg2fd >= 0) {
        struct { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
                 set_tid, set_tid_size, cgroup; } args = { .flags = flags | CLONE_INTO_CGROUP,
                 .exit_signal = SIGCHLD, .cgroup = (uint64_t)cg2fd };
        pid_t pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid >= 0)
            return pid;
        cg2_need_write = 1;
    }
    return syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

/* Opens the cgroup files now, as the host sees them: after the clone, init is in new namespaces. */
static void open_cgroups(void)
{
    for (int i = 0; i < S.ncg1; i++)
        if ((cg1fds[i] = open(S.cg1[i], O_WRONLY | O_CLOEXEC)) < 0)
            die("cgroup", S.cg1[i]);
    if (S.cg2) {
        char procs[4096];
        snprintf(procs, sizeof procs, "%s/cgroup.procs", S.cg2);
        if ((cg2fd = open(S.cg2, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
            (cg2procs = open(procs, O_WRONLY | O_CLOEXEC)) < 0)
            die("cgroup", S.cg2);
    }
}

/* Rootless: an unprivileged process may map only its own ids into its child's user namespace, and
 * only after denying setgroups (else dropping a group could grant access). */
static int write_maps(pid_t pid)
{
    const char *files[][2] = { { "setgroups", "deny" }, { "uid_map", S.uid_map }, { "gid_map", S.gid_map } };
    char p[64];
    for (int i = 0; i < 3; i++)
        if (snprintf(p, sizeof p, "/proc/%d/%s", pid, files[i][0]), write_file(p, files[i][1]) < 0)
            return -1;
    return 0;
}

int main(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);           /* the engine's spawning thread dies -> so do we */
    parse_spec();
    open_cgroups();
    /* netns 2: the engine made the namespace ahead of time (fd 4, lo up); init inherits it from us */
    if (S.netns == 2 && (setns(NETNS_FD, CLONE_NEWNET) < 0 || close(NETNS_FD) < 0))
        die("network", "setns");
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) < 0)
        die("clone", "pipe");
    pid_t pid = clone_init(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                           (S.netns == 1 ? CLONE_NEWNET : 0) | (S.uid_map ? CLONE_NEWUSER : 0));
    if (pid < 0)
        die("clone", "");
    if (pid == 0) {
        close(sync[1]);
        init_main(sync[0]);
    }
    close(sync[0]);
    send_msg(-1, "pid", num(pid), NULL);
    if (S.uid_map && write_maps(pid) < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        errno = e;
        die("uidmap", S.uid_map);
    }
    (void)!write(sync[1], "1", 1);
    close(sync[1]);
    /* hold nothing init or the payload uses: the engine waits for EOF on the log sockets */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int i = 0; i < 3; i++)
        dup2(null, i);
    for (int i = 0; i < S.ncg1; i++)
        close(cg1fds[i]);
    if (cg2fd >= 0)
        close(cg2fd), close(cg2procs);
    int st;
    struct rusage ru;
    while (wait4(pid, &st, __WALL, &ru) < 0 && errno == EINTR)
        continue;
    drain();
    send_msg(-1, "reaped", num(st), num(ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec),
             num(ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec), num(ru.ru_maxrss), NULL);
    return 0;
}
