/* What goes onto the new root: /proc, /dev, /sys, /tmp, /run and Docker's masked and read-only
 * paths (mount_system), then the spec's bind, tmpfs and cow mounts and file copies (mount_user). */
#include "isotest-init.h"
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

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
        if (!ROOTLESS && mknodat(dev, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) == 0)
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
    /* POSIX message queues of the container's IPC namespace, as Docker mounts them */
    close(mount_in("mqueue", "dev/mqueue", 1, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
    static const char *links[][2] = { { "pts/ptmx", "ptmx" }, { "/proc/self/fd", "fd" },
        { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" } };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlinkat(links[i][0], dev, links[i][1]) < 0)
            die("mount", "/dev");
    close(dev);
}

/* /sys/fs/cgroup as Docker shows it, read-only and rooted at the container's own group (init has
 * unshared its cgroup namespace, so a new cgroup mount starts there). cgroup v2: the cgroup2
 * filesystem. v1: a tmpfs with one mount per hierarchy /proc/self/cgroup lists, named by its
 * controllers ("cpu,cpuacct", with a symlink per controller as systemd makes them; "name=systemd"
 * as "systemd"). A hierarchy the kernel will not mount here (a v1 hierarchy in a user namespace it
 * does not own) falls back to a read-only bind of the container's own group, which the spec names. */
static int bind_own_group(const char *name, const char *dst)
{
    char prefix[128], dir[4096];
    snprintf(prefix, sizeof prefix, "/sys/fs/cgroup/%s/", name);
    for (int i = 0; i < S.ncg1; i++) {
        char *slash;
        if (strncmp(S.cg1[i], prefix, strlen(prefix)) || snprintf(dir, sizeof dir, "%s", S.cg1[i]) >= (int)sizeof dir ||
            !(slash = strrchr(dir, '/')))
            continue;
        *slash = 0;                             /* .../tasks -> the group */
        int fd = mount_in(dir, dst, 1, NULL, MS_BIND, NULL);
        make_ro(fd, dst);
        close(fd);
        return 0;
    }
    return 0;                                   /* no group of ours in this hierarchy: an empty directory */
}

static void mount_cgroups(void)
{
    char buf[4096], p[32];
    int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (n <= 0)
        die("mount", "/proc/self/cgroup");
    close(fd);
    buf[n] = 0;
    const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (!strncmp(buf, "0::", 3) && !strchr(buf, '\n')[1]) {      /* one line, 0::/ : cgroup v2 only */
        close(mount_in("cgroup2", "sys/fs/cgroup", 1, "cgroup2", flags | MS_RDONLY, NULL));
        return;
    }
    int top = mount_in("tmpfs", "sys/fs/cgroup", 1, "tmpfs", flags, "mode=0755,size=64k");
    for (char *line = buf, *next; *line; line = next) {
        next = strchr(line, '\n');
        next = next ? (*next = 0, next + 1) : line + strlen(line);
        char *ctl = strchr(line, ':'), *end = ctl ? strchr(ctl + 1, ':') : NULL;
        if (!end || end == ctl + 1)
            continue;                           /* 0::/ of a hybrid host: the unified tree is not shown */
        *end = 0;
        ctl++;
        const char *name = strncmp(ctl, "name=", 5) ? ctl : ctl + 5;
        char dst[128], opts[128];
        snprintf(dst, sizeof dst, "sys/fs/cgroup/%s", name);
        snprintf(opts, sizeof opts, "%s%s", name == ctl ? "" : "none,", ctl);
        int d = target(dst, 1);
        if (mount("cgroup", fdpath(p, d), "cgroup", flags | MS_RDONLY, opts) < 0 && bind_own_group(name, dst) < 0)
            die("mount", dst);
        close(d);
        for (char *c = ctl, *comma; name == ctl && (comma = strchr(c, ',')); c = comma + 1) {
            char link[64];
            snprintf(link, sizeof link, "%.*s", (int)(comma - c), c);
            symlinkat(name, top, link);
            if (!strchr(comma + 1, ','))
                symlinkat(name, top, comma + 1);
        }
    }
    make_ro(top, "sys/fs/cgroup");
    close(top);
}

/* /proc, /dev, /sys, /tmp, /run, then Docker's masked and read-only paths over the new procfs/sysfs. */
void mount_system(void)
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
    mount_cgroups();
    if (!strcmp(S.root, "host")) {
        char opt[64];
        close(mount_in("tmpfs", "tmp", 1, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_opts(opt, "1777", S.tmp_size)));
        close(mount_in("tmpfs", "run", 1, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_opts(opt, "0755", S.run_size)));
    }
    if (mask_paths("") < 0)
        die("mount", "masked paths");
}

/* Docker's masked and read-only paths over /proc and /sys (those starting with prefix: "" for all),
 * inside the root (open_in_root). 0, or -1 with errno: the caller decides whether that is fatal. */
int mask_paths(const char *prefix)
{
    char p[32];
    int fd;
    size_t n = strlen(prefix);
    static const char *masked[] = { "proc/acpi", "proc/asound", "proc/interrupts", "proc/kcore", "proc/keys",
        "proc/latency_stats", "proc/timer_list", "proc/timer_stats", "proc/sched_debug", "proc/scsi",
        "sys/firmware", "sys/devices/virtual/powercap" };
    for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
        struct stat st;
        if (strncmp(masked[i], prefix, n) || (fd = open_in_root(masked[i], O_PATH)) < 0)
            continue;                           /* absent on this kernel: nothing to hide */
        int r = fstat(fd, &st);
        if (r == 0 && S_ISDIR(st.st_mode))
            r = mount("tmpfs", fdpath(p, fd), "tmpfs", MS_RDONLY, "size=0");
        else if (r == 0)
            r = mount("/dev/null", fdpath(p, fd), NULL, MS_BIND, NULL);
        close(fd);
        if (r < 0)
            return -1;
    }
    static const char *ro[] = { "proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger" };
    for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
        if (strncmp(ro[i], prefix, n) || (fd = open_in_root(ro[i], O_PATH)) < 0)
            continue;
        int r = mount(fdpath(p, fd), p, NULL, MS_BIND | MS_REC, NULL);
        close(fd);
        if (r < 0 || (fd = open_in_root(ro[i], O_PATH)) < 0)
            return -1;
        r = try_make_ro(fd);
        close(fd);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* For a payload that is PID 1 of its own PID namespace (spec `pid1`): a mount namespace of its own
 * with a /proc of that PID namespace over the container's (so $$ and /proc/self agree, as under
 * dockerd), masked as the first. Rootless too: the masks over the first procfs were made in our own
 * user namespace, so they are not locked and the kernel's mount_too_revealing lets the new one be. */
int own_proc(void)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return -1;
    /* we share init's memory (a vfork child): its root variable is put back before we return */
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return -1;
    int old = use_root(root);
    int r = mask_paths("proc/");
    use_root(old);
    close(root);
    return r;
}

/* Copies a host file into the container. Rootless, the container's root cannot create files in
 * directories owned by unmapped host ids (root's /etc): then the copy is made on the staging tmpfs
 * and bind-mounted over the existing target. */
static void copy_in(struct copy *c, int i)
{
    char dir[4096], staged[MAXSTAGE + 32];
    snprintf(dir, sizeof dir, "%s", c->dst);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int dfd = slash && dir[0] ? target(dir, 1) : open_in_root(".", O_PATH | O_DIRECTORY);
    const char *base = slash ? slash + 1 : dir;
    int out = openat(dfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
        snprintf(staged, sizeof staged, "%s/f%d", stage_dir, i);
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
void mount_user(void)
{
    char p[32];
    for (int i = 0; i < S.nmnts; i++) {
        struct mnt *m = &S.mnts[i];
        struct stat st;
        if (m->kind == 'b') {
            if (fstat(m->srcfd, &st) < 0)
                die("mount", m->src);
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
