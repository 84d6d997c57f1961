/* The container's root filesystem: a staging tmpfs in init's own mount namespace, the root as an
 * overlay (or, rootless with the host's root, a mirror of overlays), the read-only seal, and
 * pivot_root. Every target is resolved inside the new root (openat2 RESOLVE_IN_ROOT). */
#include "isotest-init.h"
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>

#ifndef MOUNT_ATTR_RDONLY           /* musl's <sys/mount.h> lacks the new mount API; the kernel ABI: */
#define MOUNT_ATTR_RDONLY 0x00000001
struct mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

static int rootfd = -1;

/* tmpfs options: a mode and, when the spec caps it, a size (without one a tmpfs may take half the RAM). */
const char *tmpfs_opts(char buf[64], const char *mode, unsigned long long size)
{
    if (size)
        snprintf(buf, 64, "mode=%s,size=%llu", mode, size);
    else
        snprintf(buf, 64, "mode=%s", mode);
    return buf;
}         /* O_PATH fd of the new root while it is being built */

const char *fdpath(char buf[32], int fd)
{
    snprintf(buf, 32, "/proc/self/fd/%d", fd);
    return buf;
}

/* Opens path (relative to the new root) with RESOLVE_IN_ROOT, so an absolute symlink inside an image
 * (var/run -> /run) resolves inside the container instead of sending a mount onto the host. */
/* Points open_in_root at another root (a payload's "/" after pivot_root); returns the previous one. */
int use_root(int fd)
{
    int old = rootfd;
    rootfd = fd;
    return old;
}

int open_in_root(const char *path, int flags)
{
    struct open_how how = { .flags = flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
    while (*path == '/')
        path++;
    if (!*path)
        path = ".";
    return openat2_retry(rootfd, path, &how);
}

/* Opens a mount target inside the new root, creating it if missing (mkdir -p; the last component a
 * directory when dir, else an empty file). Each component is created in a parent that was itself
 * resolved inside the root. Returns an O_PATH fd or dies. */
int target(const char *path, int dir)
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
int mount_in(const char *src, const char *dst, int dir, const char *type, unsigned long flags,
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
int try_make_ro(int fd)
{
    struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) == 0)
        return 0;
    if (errno != ENOSYS)
        return -1;
    char p[32];
    struct statvfs sv;
    if (statvfs(fdpath(p, fd), &sv) < 0)
        return -1;
    unsigned long keep = 0;
    static const unsigned long map[][2] = { { ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV },
        { ST_NOEXEC, MS_NOEXEC }, { ST_NOATIME, MS_NOATIME }, { ST_NODIRATIME, MS_NODIRATIME },
        { ST_RELATIME, MS_RELATIME } };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (sv.f_flag & map[i][0])
            keep |= map[i][1];
    return mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL);
}

void make_ro(int fd, const char *what)
{
    if (try_make_ro(fd) < 0)
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
static int layers;          /* upper/work pairs made on the staging tmpfs (u0, w0, ...) */
const char *stage_dir = STAGE;              /* where they are made: STAGE, or the staging of a mirror made ahead (S.mirror) */

/* A maker's mirror names its pairs from here on, so that a container's own overlays (cow mounts, from u0) made on
 * the same staging tmpfs after the mirror arrived never meet one of them. */
#define MIRROR_FIRST_LAYER 100000

int overlay(const char *lower, const char *target_path)
{
    char up[MAXSTAGE + 32], work[MAXSTAGE + 32], opts[8192];
    snprintf(up, sizeof up, "%s/u%d", stage_dir, layers);
    snprintf(work, sizeof work, "%s/w%d", stage_dir, layers++);
    if (mkdir(up, 0755) < 0 || mkdir(work, 0755) < 0)
        return -1;
    /* The merged root takes the upper dir's owner and mode: give it the lower dir's, or a data dir
     * (PostgreSQL's, 0700 and owned by its user) looks root-owned and 0755 through the overlay. An
     * owner unmapped in a user namespace cannot be given (EINVAL); the mode still is. */
    struct stat st;
    char top[64];                               /* several lower dirs (an image): the topmost's mode */
    size_t n = strcspn(lower, ":");
    snprintf(top, sizeof top, "%.*s", (int)n, lower);
    if (stat(lower[n] ? top : lower, &st) == 0) {
        if (chown(up, st.st_uid, st.st_gid) < 0 && errno != EINVAL && errno != EPERM)
            return -1;
        if (chmod(up, st.st_mode & 07777) < 0)
            return -1;
    }
    snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s%s", lower, up, work,
             ROOTLESS ? ",userxattr" : "");
    return mount("overlay", target_path, "overlay", MS_NODEV, opts);     /* no device on a writable layer */
}

/* Opens every host-side source now, before the staging tmpfs covers /tmp, where tests like to keep
 * root directories and bind sources; mounts then name them as /proc/self/fd/N. */
static int root_srcfd = -1, lower_fds[MAXLOWER];

static void open_sources(void)
{
    if (strcmp(S.root, "host") != 0 && (root_srcfd = open(S.root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        die("root", S.root);
    for (int i = 0; i < S.nlower; i++)
        if ((lower_fds[i] = open(S.lower[i], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
            die("root", S.lower[i]);
    for (int i = 0; i < S.nmnts; i++)
        if (S.mnts[i].src && (S.mnts[i].srcfd = open(S.mnts[i].src, O_PATH | O_CLOEXEC)) < 0)
            die("mount", S.mnts[i].src);
    for (int i = 0; i < S.nfiles; i++)
        if ((S.files[i].srcfd = open(S.files[i].src, O_RDONLY | O_CLOEXEC)) < 0)
            die("file", S.files[i].src);
}

/* True when a spec mount or file lands below the host directory `dir` ("/var", "/var/lib"). */
static int holds_target(const char *dir)
{
    size_t n = strlen(dir);
    for (int i = 0; i < S.nmnts + S.nfiles; i++) {
        const char *t = i < S.nmnts ? S.mnts[i].dst : S.files[i - S.nmnts].dst;
        if (strncmp(t, dir, n) == 0 && t[n] == '/')
            return 1;
    }
    return 0;
}

/* Rootless host root: overlayfs refuses a lower dir with locked submounts in a user namespace
 * (EINVAL for lowerdir=/, /var holding /var/lib/docker, ...). So such a directory becomes a tmpfs
 * carrying one overlay per entry, recursively; symlinks are recreated, files bound read-only. Only
 * past a few levels does a directory fall back to a read-only recursive bind.
 * A directory that a mount target or copied file lands in is mirrored the same way, however deep:
 * inside a whole overlay it keeps its host owner, which the user namespace does not map (root's
 * /usr/share, postgres's /var/lib/postgresql), so the container may not create the target there
 * (EACCES); a mirror's directories and overlay roots belong to the container's user. Without this,
 * whether a target could be made depended on whether the host happened to hold a mount nearby
 * (/var/lib/docker made /var/lib/postgresql/data work on a docker host and fail elsewhere). */
/* True when the engine's plan (submounts records, from its mount table) says `dir` has mounts below it. */
static int holds_mounts(const char *dir)
{
    for (int i = 0; i < S.nsubmounts; i++)
        if (!strcmp(S.submounts[i], dir))
            return 1;
    return 0;
}

/* True when the engine's plan (rotree records) says no id of the container may write anything in the tree at `dir`. */
static int read_only_tree(const char *dir)
{
    for (int i = 0; i < S.nrotrees; i++)
        if (!strcmp(S.rotrees[i], dir))
            return 1;
    return 0;
}

/* True for the host directory `host` (st: its stat) that this user can list, holding nothing, and not writable by
 * others (a shared /var/tmp). */
static int empty_dir(const char *host, const struct stat *st)
{
    if (st->st_mode & S_IWOTH)
        return 0;
    DIR *d = opendir(host);
    if (!d)
        return 0;
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d));)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* True for a host directory this user may not enter (root's /root, /var/lib/private: 0700 root). */
static int shut_dir(const char *host)
{
    return faccessat(AT_FDCWD, host, X_OK, AT_EACCESS) < 0 && errno == EACCES;
}

/* Whether a host directory is mirrored as a plain directory (empty, or shut to this user), as last found: the maker
 * makes the same tree again and again, and the answer holds while the directory's inode, mtime and ctime do (an
 * entry added or removed changes its mtime; a mode, owner or ACL its ctime), so it asks again only when one
 * changed. Asking is ~6 system calls per directory entry, reading an ext4 directory among them: a third of a make's
 * calls. An answer is kept only when the directory had not changed for 50 ms when it was found: a timestamp is as
 * coarse as the kernel's tick, and two changes within one tick leave one stamp (git's rule for a "racy" index). */
static struct plain { dev_t dev; ino_t ino; struct timespec mtime, ctime; int plain; } plains[512];
static int nplains;

static int same_time(struct timespec a, struct timespec b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

static int plain_dir(const char *host, const struct stat *st)
{
    int i = 0;
    while (i < nplains && !(plains[i].dev == st->st_dev && plains[i].ino == st->st_ino))
        i++;
    if (i < nplains && same_time(plains[i].mtime, st->st_mtim) && same_time(plains[i].ctime, st->st_ctim))
        return plains[i].plain;
    int plain = empty_dir(host, st) || shut_dir(host);
    struct timespec now;
    if (i < (int)(sizeof plains / sizeof plains[0]) && clock_gettime(CLOCK_REALTIME, &now) == 0) {
        long long settled = (now.tv_sec - st->st_ctim.tv_sec) * 1000000000LL + (now.tv_nsec - st->st_ctim.tv_nsec);
        if (settled > 50000000LL) {     /* ctime is the later of the two stamps: every change sets it */
            plains[i] = (struct plain){ st->st_dev, st->st_ino, st->st_mtim, st->st_ctim, plain };
            nplains += i == nplains;    /* a directory seen before keeps its slot: one that changes often never fills the table */
        }
    }
    return plain;
}

/* host: a host directory; st: its lstat (NULL for /, depth 0); dst: where it is mirrored. */
static void mirror_dir(const char *host, const struct stat *st, const char *dst, int depth)
{
    int holds = depth > 0 && holds_target(host);
    /* An empty host directory needs no overlay: an overlay of it shows exactly what the directory made for it on the
     * mirror's tmpfs shows (nothing; the lower's mode; the upper's owner, which is the lower's when the user namespace
     * maps it), and writes land in the container's layer either way. It saves a superblock made and freed per start
     * (14 of 44 here). What differs: a file the host puts there later is not seen (through an overlay it would be),
     * which is why a directory others may write to (a shared /var/tmp) keeps its overlay. */
    /* Nor does a directory this user may not enter: through an overlay nothing inside it could be reached either
     * (overlayfs reads a lower directory with the mounter's credentials, ours, and the user namespace grants no
     * capability over owners it does not map), only its top written. A directory of the container's layer with its
     * mode shows the same, listed as empty where the overlay refused the listing. 7 of 32 overlays here. */
    if (depth > 0 && !holds && !holds_mounts(host) && plain_dir(host, st)) {
        if ((chown(dst, st->st_uid, st->st_gid) < 0 && errno != EINVAL && errno != EPERM) || chmod(dst, st->st_mode & 07777) < 0)
            die("root", dst);
        return;
    }
    /* A tree the engine found no id of the container may write in (rotree records, RootFs/HostReadOnlyTrees.cs:
     * /var/lib/dpkg, /var/cache, ... root's through and through, unmapped here) is a read-only bind of
     * the host's: through an overlay every write there failed too (EACCES: the user namespace grants no capability
     * over owners it does not map), so the overlay bought nothing but a superblock made at each start and freed
     * after it with an expedited RCU grace period, the background work that kept rootless starts at 1.35-1.74x root's
     * (18 of 26 overlays here). Writes now fail with EROFS; what the host changes there shows at once. Recursive:
     * a mount the plan missed below it must come along (a bind without it is refused, as the overlay was). Like the
     * files bound read-only beside it, the flag is not locked: a container given CAP_SYS_ADMIN may remount it, and
     * then still writes only what its user may write on the host, which in this tree was nothing when it was walked. */
    if (depth > 0 && !holds && !holds_mounts(host) && read_only_tree(host)) {
        bind_ro(host, dst, MS_REC);
        return;
    }
    /* A directory the plan names is not tried as an overlay: the kernel's refusal costs a superblock set up and
     * torn down (~1 ms each, measured here, against ~0.1 ms for an overlay that works). A directory the plan
     * misses (a mount made after the engine read its table) is still tried, and mirrored when refused. */
    if (depth > 0 && !holds && !holds_mounts(host) && overlay(host, dst) == 0)
        return;
    /* A directory we may not list (dockerd's /var/lib/docker, 0710 root, full of its mounts) is shown
     * as it is on the host: read-only, and just as unreadable. */
    DIR *d = depth < 4 || holds ? opendir(host) : NULL;
    char opt[64];
    if (!d || mount("tmpfs", dst, "tmpfs", MS_NODEV, tmpfs_opts(opt, "0755", S.layer_size)) < 0) {
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
        struct stat est;
        snprintf(h, sizeof h, "%s/%s", depth ? host : "", e->d_name);
        snprintf(p, sizeof p, "%s/%s", dst, e->d_name);
        if (s || lstat(h, &est) < 0)
            continue;
        if (S_ISLNK(est.st_mode)) {
            ssize_t l = readlink(h, link, sizeof link - 1);
            if (l < 0 || (link[l] = 0, symlink(link, p) < 0))
                die("root", h);
        } else if (S_ISDIR(est.st_mode)) {
            if (mkdir(p, est.st_mode & 07777) < 0)
                die("root", p);
            mirror_dir(h, &est, p, depth + 1);
        } else if (S_ISREG(est.st_mode)) {
            int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            if (fd < 0)
                die("root", p);
            close(fd);
            bind_ro(h, p, 0);
        }
    }
    closedir(d);
}

/* The whole rootless host mirror at r (on the staging tmpfs), and the mount points the container mounts its own
 * /proc, /sys, /dev, /tmp and /run on. */
static void mirror_host(const char *r)
{
    mirror_dir("/", NULL, r, 0);
    static const char *own[] = { "proc", "sys", "dev", "tmp", "run" };
    char p[64];
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (snprintf(p, sizeof p, "%s/%s", r, own[i]), mkdir(p, 0755) < 0)
            die("root", p);
}

/* The root: an overlay (host / or a directory) with its upper dir on the staging tmpfs, or a read-only
 * recursive bind. The staging tmpfs exists only in this mount namespace, so the writable layer
 * vanishes with the container and nothing touches the host's disk. */
void build_root(void)
{
    char r[MAXSTAGE + 8], src[32], opt[64];
    /* mirror STAGE: the engine's maker made this container's mount namespace ahead (mirror_main), a private copy of
     * the host's table with the staging tmpfs at STAGE and the mirror built at STAGE/r. Joining it stands in for the
     * copy clone_init would have made (shim.c leaves CLONE_NEWNS out) and for the overlays made here. The sources
     * are opened after, in it, as they must be for the binds that follow (a bind's source must be a mount of ours);
     * the staging covers only the engine's own directory STAGE, never a source (RootFs/HostMirrors.cs, SourcesFit). */
    if (S.mirror) {
        if (setns(MIRROR_FD, CLONE_NEWNS) < 0)
            die("mount", "join the engine's host mirror (fd 6)");
        close(MIRROR_FD);
        stage_dir = S.mirror;
    } else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {  /* no mount may propagate out (the maker's are) */
        die("mount", "/");
    }
    snprintf(r, sizeof r, "%s/r", stage_dir);
    open_sources();
    if (!S.mirror && (mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_opts(opt, "0755", S.layer_size)) < 0 || mkdir(r, 0755) < 0))
        die("mount", STAGE);
    const char *lower = root_srcfd >= 0 ? fdpath(src, root_srcfd) : "/";
    /* An image: every layer by its descriptor, topmost first. /proc/self/fd/N is short, so 128 layers
     * stay well inside the page the kernel takes of mount options (what overlay2's short links are for). */
    static char lowers[MAXLOWER * 20 + 32];
    if (S.nlower > 0) {
        size_t at = (size_t)snprintf(lowers, sizeof lowers, "%s", lower);
        for (int i = 0; i < S.nlower; i++)
            at += (size_t)snprintf(lowers + at, sizeof lowers - at, ":/proc/self/fd/%d", lower_fds[i]);
        lower = lowers;
    }
    if (root_srcfd < 0 && ROOTLESS) {
        if (!S.mirror)
            mirror_host(r);
    } else if (overlay(lower, r) < 0) {
        die("root", S.root);
    }
    if ((rootfd = open(r, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        die("root", r);
}

/* A read-only root is built writable like any other, so that every mount point can be made first
 * (a directory root may lack /proc, a tmpfs target may be new); then the root and what lies under it
 * turn read-only, and the system and user mounts go on top, writable where asked (Docker's order). */
void seal_root(void)
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

/* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves no path to the
 * host's tree (and releases the staging tmpfs except what the overlays pin). */
void enter_root(void)
{
    if (fchdir(rootfd) < 0)
        die("pivot_root", "the root");
    close(rootfd);
    if (root_srcfd >= 0)
        close(root_srcfd);
    for (int i = 0; i < S.nlower; i++)
        close(lower_fds[i]);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        die("pivot_root", S.root);
    if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        die("pivot_root", "/");
}

/* The engine's mirror maker (rootless with a shared user namespace, RootFs/HostMirrors.cs): in that user namespace
 * (fd 5), each `make` builds, in a mount namespace made for it, the mirror a container's init would build (no spec
 * targets below host directories: the engine only hands it to such containers) on a staging tmpfs of the layer size
 * at STAGE (a directory of the engine's own, never a source), and sends that namespace. The container's init joins
 * it (build_root); the engine makes the next while the container runs. One namespace serves one container: its
 * overlays' upper dirs are that container's writable layer.
 * Nothing here is ever unmounted: the maker steps back into its base namespace (a private copy of the engine's, made
 * once) and the namespace it made lives on only through the descriptor it sent, then as the container's, and its
 * mounts go when the engine releases that (Namespaces/MountNamespaceRelease.cs). Every unmount ends in an expedited
 * RCU grace period, which interrupts every CPU and which a starting container's own unmount of its old root waits
 * behind; and a maker that kept its copy of each tree freed the overlays of many trees at once, 14-50 ms of it, in
 * the middle of some start (findings.md, "one start in eight"). */
_Noreturn void mirror_main(struct msg *first)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "isotest-mirror");       /* in ps, and not counted as a container's shim by the leak tests */
    if (first->n < 4)
        errno = EINVAL, die("spec", "mirror: a layer size, a staging directory and a count of submounts expected");
    char *end;
    errno = 0;
    S.layer_size = strtoull(first->f[1], &end, 10);
    if (errno || *end || end == first->f[1])
        errno = EINVAL, die("spec", "mirror: the layer size is not a number");
    if (first->f[2][0] != '/' || strlen(first->f[2]) > MAXSTAGE)
        errno = EINVAL, die("spec", "mirror: the staging directory is not an absolute path within the agent's limit");
    stage_dir = first->f[2];
    /* then NSUBMOUNTS submounts, and the rest are read-only trees (as the records of those names) */
    unsigned long nsub = strtoul(first->f[3], &end, 10);
    if (*end || end == first->f[3] || nsub > MAXSUBMOUNTS || nsub > (unsigned long)first->n - 4 ||
        first->n - 4 - (int)nsub > MAXROTREES)
        errno = EINVAL, die("spec", "mirror: at most 256 submounts and 256 read-only trees expected");
    for (int i = 4; i < first->n; i++) {
        if (first->f[i][0] != '/')
            errno = EINVAL, die("spec", "mirror: a submount or read-only tree is not an absolute path");
        if (i < 4 + (int)nsub)
            S.submounts[S.nsubmounts++] = first->f[i];
        else
            S.rotrees[S.nrotrees++] = first->f[i];
    }
    S.join_userns = 1;                          /* ROOTLESS: userxattr, as in the container */
    if (setns(USERNS_FD, CLONE_NEWUSER) < 0 || close(USERNS_FD) < 0)
        die("userns", "setns");
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        die("mount", "/");
    int base = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (base < 0)
        die("mount", "/proc/self/ns/mnt");
    static struct msg m;
    char opt[64], r[MAXSTAGE + 8];
    snprintf(r, sizeof r, "%s/r", stage_dir);
    while (recv_msg(&m) && !(m.n == 1 && !strcmp(m.f[0], "exit"))) {
        if (m.n != 1 || strcmp(m.f[0], "make") != 0)
            errno = EINVAL, die("spec", "mirror: only make or exit follows");
        layers = MIRROR_FIRST_LAYER;
        /* a copy of the base: private like it, and holding none of the trees made before */
        if (unshare(CLONE_NEWNS) < 0)
            die("mount", "unshare");
        if (mount("tmpfs", stage_dir, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_opts(opt, "0755", S.layer_size)) < 0 ||
            mkdir(r, 0755) < 0)
            die("mount", stage_dir);
        mirror_host(r);
        int made = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
        if (made < 0 || setns(base, CLONE_NEWNS) < 0)
            die("mount", "back to the maker's namespace");
        send_msg(made, "mirror", NULL);
        close(made);
    }
    _exit(0);
}
