/* The owners tool (PROTOCOL.md "Owners"): rootless with subordinate ranges, an image layer's files must be
 * owned by the host ids the containers' maps give the tar's owners (container 0 -> the caller, 1.. -> the
 * ranges). The engine unpacks as the caller; this gives the files their owners from inside a user namespace
 * with those maps, where it holds CAP_CHOWN over every mapped id, and takes them back (everything to the
 * caller, directories u+rwx) before the engine removes a tree it could otherwise not enter:
 *   isotest-init own    NEWUIDMAP NEWGIDMAP UID_MAP GID_MAP ROOT   < records "uid\0gid\0mode\0path\0"...
 *   isotest-init disown NEWUIDMAP NEWGIDMAP UID_MAP GID_MAP PATH
 * Paths of `own` are relative to ROOT and resolved inside it (RESOLVE_IN_ROOT, the last component not
 * followed), as the unpacker resolved them: a symlink in a layer cannot send a chown to the host. mode
 * (octal; "-" for a symlink) is set again after the chown, which clears setuid and setgid. Exit 0, or 1
 * with one line on stderr naming what failed. */
#include "isotest-init.h"
#include <ftw.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static int rootfd = -1;

static int fail(const char *what, const char *path)
{
    dprintf(2, "%s '%s': %s\n", what, path, strerror(errno));
    return 1;
}

static int own_one(char *path, const char *uid, const char *gid, const char *mode)
{
    char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    if (slash)
        *slash = 0;
    int parent = syscall(SYS_openat2, rootfd, slash ? path : ".", &how, sizeof how);
    if (slash)
        *slash = '/';
    if (parent < 0)
        return errno == ENOENT ? 0 : fail("open the parent of", path);   /* removed by a later entry */
    int fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc = 0;
    char proc[32];
    if (fd < 0)
        rc = errno == ENOENT ? 0 : fail("open", path);
    else if (fchownat(fd, "", strtoul(uid, NULL, 10), strtoul(gid, NULL, 10), AT_EMPTY_PATH) < 0)
        rc = fail("chown", path);
    else if (strcmp(mode, "-") && (snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd),
                                   chmod(proc, strtoul(mode, NULL, 8)) < 0))
        rc = fail("chmod", path);
    close(parent);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int own(void)
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
            for (i = 0; i < 4; i++) {
                char *nul = memchr(buf + p, 0, have - p);
                if (!nul)
                    break;
                f[i] = buf + p;
                p = nul - buf + 1;
            }
            if (i < 4)
                break;
            if (own_one(f[3], f[0], f[1], f[2]))
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

int owners_main(int argc, char **argv)
{
    if (argc != 7 || (strcmp(argv[1], "own") && strcmp(argv[1], "disown"))) {
        dprintf(2, "usage: isotest-init own|disown NEWUIDMAP NEWGIDMAP UID_MAP GID_MAP PATH (the engine runs this)\n");
        return 2;
    }
    struct idhelpers h = { argv[2], argv[3], argv[4], argv[5] };
    char why[256];
    if (unshare_mapped(&h, why, sizeof why) < 0) {
        dprintf(2, "mapping the subordinate ids: %s: %s\n", why, strerror(errno));
        return 1;
    }
    if (!strcmp(argv[1], "disown"))
        /* directories before their entries (no FTW_DEPTH): each is opened for the caller on the way down */
        return nftw(argv[6], disown_one, 16, FTW_PHYS) == 0 ? 0 : 1;
    if ((rootfd = open(argv[6], O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return fail("open", argv[6]);
    return own();
}
