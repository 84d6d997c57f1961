/* The owners tool (PROTOCOL.md "Owners"): rootless with subordinate ranges, an image layer's files must be
 * owned by the host ids the containers' maps give the tar's owners (container 0 -> the caller, 1.. -> the
 * ranges). The engine unpacks as the caller; this gives the files their owners from inside a user namespace
 * with those maps, where it holds CAP_CHOWN over every mapped id, and takes them back (everything to the
 * caller, directories u+rwx) before the engine removes a tree it could otherwise not enter:
 *   isotest-init own    NEWUIDMAP NEWGIDMAP UID_MAP GID_MAP ROOT   < records "uid\0gid\0mode\0path\0"...
 *   isotest-init disown NEWUIDMAP NEWGIDMAP UID_MAP GID_MAP PATH
 *   isotest-init setcap NEWUIDMAP NEWGIDMAP UID_MAP GID_MAP ROOT   < records "hex\0path\0"...
 * `setcap` writes the layer's file capabilities (security.capability), which only a holder of CAP_SETFCAP
 * may: from inside the namespace the kernel stores them as v3 with the caller as their root id, so they
 * hold in every container whose maps make the caller 0, as rootless Docker's do. Without ranges its four
 * map arguments are "-": it maps the caller alone as 0 itself.
 * Paths are relative to ROOT and resolved inside it (RESOLVE_IN_ROOT, the last component not followed),
 * as the unpacker resolved them: a symlink in a layer cannot send a chown to the host. mode
 * (octal; "-" for a symlink) is set again after the chown, which clears setuid and setgid. Exit 0, or 1
 * with one line on stderr naming what failed. */
#include "isotest-init.h"
#include <ftw.h>
#include <sched.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

static int rootfd = -1;

static int fail(const char *what, const char *path)
{
    dprintf(2, "%s '%s': %s\n", what, path, strerror(errno));
    return 1;
}

/* Opens PATH (relative to ROOT, resolved inside it, the last component not followed) as O_PATH into *fd;
 * *fd stays -1 when a later entry of the layer removed it. 0, or 1 having said what failed. */
static int open_layer_path(char *path, int *fd)
{
    char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    *fd = -1;
    if (slash)
        *slash = 0;
    int parent = openat2_retry(rootfd, slash ? path : ".", &how);
    if (slash)
        *slash = '/';
    if (parent < 0)
        return errno == ENOENT ? 0 : fail("open the parent of", path);
    *fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(parent);
    if (*fd < 0)
        return e == ENOENT ? 0 : (errno = e, fail("open", path));
    return 0;
}

static int own_one(char **f)
{
    const char *uid = f[0], *gid = f[1], *mode = f[2];
    char *path = f[3], proc[32];
    int fd, rc = open_layer_path(path, &fd);
    if (rc || fd < 0)
        return rc;
    if (fchownat(fd, "", strtoul(uid, NULL, 10), strtoul(gid, NULL, 10), AT_EMPTY_PATH) < 0)
        rc = fail("chown", path);
    else if (strcmp(mode, "-") && (snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd),
                                   chmod(proc, strtoul(mode, NULL, 8)) < 0))
        rc = fail("chmod", path);
    close(fd);
    return rc;
}

/* A regular file's security.capability from its hex value (a capability on anything else is refused). */
static int setcap_one(char **f)
{
    const char *hex = f[0];
    char *path = f[1], proc[32];
    unsigned char value[64];
    ssize_t len = hex_decode(hex, value, sizeof value);
    if (len <= 0)
        return errno = EINVAL, fail("read the capability of", path);
    struct stat st;
    int fd, rc = open_layer_path(path, &fd);
    if (rc || fd < 0)
        return rc;
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (fstat(fd, &st) < 0)
        rc = fail("stat", path);
    else if (!S_ISREG(st.st_mode))
        rc = (errno = EINVAL, fail("set a file capability on (not a regular file)", path));
    else if (setxattr(proc, "security.capability", value, len, 0) < 0)
        rc = fail("set security.capability on", path);
    close(fd);
    return rc;
}

/* Reads stdin's records of NFIELDS NUL-terminated fields each and hands each to EACH, stopping at a failure. */
static int records(int nfields, int (*each)(char **fields))
{
    static char buf[64 * 1024];
    size_t have = 0;
    ssize_t n;
    while ((n = read(0, buf + have, sizeof buf - have)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail("read", "stdin");
        }
        have += n;
        size_t at = 0;
        for (;;) {
            char *f[4];
            size_t p = at;
            int i;
            for (i = 0; i < nfields; i++) {
                char *nul = memchr(buf + p, 0, have - p);
                if (!nul)
                    break;
                f[i] = buf + p;
                p = nul - buf + 1;
            }
            if (i < nfields)
                break;
            if (each(f))
                return 1;
            at = p;
        }
        if (at == 0 && have == sizeof buf)
            return errno = ENAMETOOLONG, fail("read a record from", "stdin");
        memmove(buf, buf + at, have - at);
        have -= at;
    }
    if (have)
        return errno = EINVAL, fail("read a record from", "stdin (it ends inside one)");
    return 0;
}

static int disown_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (lchown(path, 0, 0) < 0 && errno != ENOENT)
        return fail("chown", path);
    if ((type == FTW_D || type == FTW_DP) && chmod(path, (st->st_mode & 07777) | 0700) < 0)
        return fail("chmod", path);
    return 0;
}

/* Without ranges: a user namespace with the caller alone mapped as 0, written by the caller itself (an
 * unprivileged process may map only its own ids, and its gid only once setgroups is denied). */
static int unshare_self(void)
{
    char map[64];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER) < 0)
        return fail("unshare", "a user namespace");
    if (write_file("/proc/self/setgroups", "deny") < 0)
        return fail("write", "/proc/self/setgroups");
    snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
    if (write_file("/proc/self/uid_map", map) < 0)
        return fail("write", "/proc/self/uid_map");
    snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
    if (write_file("/proc/self/gid_map", map) < 0)
        return fail("write", "/proc/self/gid_map");
    return 0;
}

int owners_main(int argc, char **argv)
{
    if (argc != 7 || (strcmp(argv[1], "own") && strcmp(argv[1], "disown") && strcmp(argv[1], "setcap"))) {
        dprintf(2, "usage: isotest-init own|disown|setcap NEWUIDMAP NEWGIDMAP UID_MAP GID_MAP PATH (the engine runs this)\n");
        return 2;
    }
    /* ROOT is opened before the namespace: a running container's (/proc/PID/root) is reachable only from here,
     * where the caller owns the container's user namespace; from a sibling namespace it is not. */
    if (strcmp(argv[1], "disown") && (rootfd = open(argv[6], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return fail("open", argv[6]);
    if (!strcmp(argv[2], "-")) {
        if (strcmp(argv[1], "setcap"))
            return errno = EINVAL, fail("map without subordinate ranges for", argv[1]);
        if (unshare_self())
            return 1;
    } else {
        struct idhelpers h = { argv[2], argv[3], argv[4], argv[5] };
        char why[256];
        if (unshare_mapped(&h, why, sizeof why) < 0) {
            dprintf(2, "mapping the subordinate ids: %s: %s\n", why, strerror(errno));
            return 1;
        }
    }
    if (!strcmp(argv[1], "disown"))
        /* directories before their entries (no FTW_DEPTH): each is opened for the caller on the way down */
        return nftw(argv[6], disown_one, 16, FTW_PHYS) == 0 ? 0 : 1;
    return !strcmp(argv[1], "own") ? records(4, own_one) : records(2, setcap_one);
}
