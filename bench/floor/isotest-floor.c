/*
 * isotest-floor: the kernel's floor for one container as IsoTest's engine makes it, one cycle per
 * request, so the benchmark can run it round-robin next to the other peers (CycleBenchmark.cs).
 *
 * A cycle does the isolation work the engine's agent does for `FromHost().WithMemoryLimit(64m)
 * .WithCpuLimit(0.5)` and nothing else: v1 memory + cpu cgroups made and capped by the parent and
 * joined by the child itself (self-move through `tasks`, as the agent does); a clone into new pid,
 * mount, uts, ipc, cgroup and network namespaces (or a network namespace made before the cycle, the
 * engine's pool); a root on a tmpfs private to the mount namespace: an overlay of the host's / with
 * its upper dir there, /proc, a /dev tmpfs with mknod'ed nodes, devpts, /sys read-only, /tmp;
 * pivot_root; hostname; lo up; Docker's capabilities and no_new_privs; then PID 1 forks /bin/true,
 * reaps it and exits; the parent reaps PID 1 and removes the cgroups. No protocol, no engine, no
 * error reporting beyond a step name: what is left is what the kernel charges.
 *
 * A server fixture (ServerBenchmark.cs) is the same container with `busybox httpd` as the payload and
 * --root's busybox directory as the overlay's lower dir: once httpd has exec'd, the parent knocks on
 * 127.0.0.1:PORT from inside the container's network namespace until it accepts, GETs /index.html on
 * a fresh connection (a 200 whose body is DIR/www/index.html), then SIGKILLs PID 1, reaps it and
 * removes the cgroups. No port is published: a connection made inside the namespace is the cheapest
 * path to the server any engine could offer, which is what makes this a floor.
 *
 * Protocol (stdin/stdout, one line each): the parent reads "cycle" or "server PORT" and answers "ok"
 * or "err STEP ERRNO". Root only; cgroup v1 (this machine) or v2 (memory.max/cpu.max).
 *   isotest-floor [--netns-ahead] [--cgroup NAME] [--root DIR]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STAGE "/tmp"
#define CGROUP2_MAGIC 0x63677270

static int v2;                          /* unified hierarchy at /sys/fs/cgroup */
static const char *group = "isotest-floor";
static char dirs[2][200];               /* this cycle's cgroup directories (v1: memory, cpu; v2: one) */
static int ndirs;
static const char *root = "/";          /* the overlay's lower dir (--root) */
static int port;                        /* this request's server port; 0 for a cycle */
static char page[4096];                 /* --root's www/index.html: the body a server must answer with */
static ssize_t page_len = -1;

static int put(const char *dir, const char *file, const char *value)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;   /* memsw is absent without swap accounting */
    ssize_t n = write(fd, value, strlen(value));
    close(fd);
    return n < 0 ? -1 : 0;
}

/* The parent's part before the clone: groups made and capped, as the engine's driver does. */
static int make_cgroups(unsigned cycle)
{
    ndirs = 0;
    if (v2) {
        snprintf(dirs[ndirs], sizeof dirs[0], "/sys/fs/cgroup/%s/%u", group, cycle);
        if (mkdir(dirs[ndirs], 0755) < 0)
            return -1;
        ndirs++;
        return put(dirs[0], "memory.max", "67108864") | put(dirs[0], "memory.swap.max", "0") |
               put(dirs[0], "cpu.max", "50000 100000");
    }
    static const char *controllers[] = { "memory", "cpu" };
    for (int i = 0; i < 2; i++) {
        snprintf(dirs[ndirs], sizeof dirs[0], "/sys/fs/cgroup/%s/%s/%u", controllers[i], group, cycle);
        if (mkdir(dirs[ndirs], 0755) < 0)
            return -1;
        ndirs++;
    }
    return put(dirs[0], "memory.limit_in_bytes", "67108864") | put(dirs[0], "memory.memsw.limit_in_bytes", "67108864") |
           put(dirs[1], "cpu.cfs_period_us", "100000") | put(dirs[1], "cpu.cfs_quota_us", "50000");
}

/* -1 when a group stayed (its errno kept): the cycle's answer says so rather than leaving it behind unseen. */
static int remove_cgroups(void)
{
    int r = 0, err = 0;
    for (int i = ndirs - 1; i >= 0; i--)
        if (rmdir(dirs[i]) < 0)
            r = -1, err = errno;
    ndirs = 0;
    errno = err;
    return r;
}

static int report = 1;                  /* the child's pipe to the parent: a failed step's name and errno */

static _Noreturn void fail(const char *step)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%s %d", step, errno);
    if (write(report, line, n) < 0) { /* the parent sees EOF either way */ }
    _exit(1);
}

static void mount_at(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
    mkdir(dst, 0755);
    if (mount(src, dst, type, flags, data) < 0)
        fail(dst);
}

static void join_cgroups(void)
{
    for (int i = 0; i < ndirs; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dirs[i], v2 ? "cgroup.procs" : "tasks");
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1)
            fail("cgroup");
        close(fd);
    }
    if (unshare(CLONE_NEWCGROUP) < 0)
        fail("cgroupns");
}

static void build_root(void)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail("private");
    /* A --root directory is opened before the staging tmpfs covers /tmp, where the bench keeps it, and
     * named as /proc/self/fd/N, as the engine's agent does (rootfs.c, open_sources). */
    int lower = -1;
    char opts[128] = "lowerdir=/,upperdir=" STAGE "/u,workdir=" STAGE "/w";
    if (strcmp(root, "/") != 0) {
        if ((lower = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
            fail("root");
        snprintf(opts, sizeof opts, "lowerdir=/proc/self/fd/%d,upperdir=" STAGE "/u,workdir=" STAGE "/w", lower);
    }
    mount_at("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    mkdir(STAGE "/u", 0755);
    mkdir(STAGE "/w", 0755);
    mount_at("overlay", STAGE "/r", "overlay", 0, opts);
    if (lower >= 0)
        close(lower);
    mount_at("proc", STAGE "/r/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_at("tmpfs", STAGE "/r/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k");
    static const struct { const char *name; unsigned major, minor; } nodes[] = {
        { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 } };
    char p[64];
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        snprintf(p, sizeof p, STAGE "/r/dev/%s", nodes[i].name);
        if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) < 0)
            fail("mknod");
    }
    mount_at("devpts", STAGE "/r/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
    mount_at("sysfs", STAGE "/r/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_at("tmpfs", STAGE "/r/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    if (chdir(STAGE "/r") < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        fail("pivot_root");
}

static void lo_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = { 0 };
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        fail("lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        fail("lo");
    close(s);
}

/* Docker's default capabilities, in the bounding, permitted and effective sets. */
static void drop_caps(void)
{
    const uint64_t keep = 1ULL << CAP_CHOWN | 1ULL << CAP_DAC_OVERRIDE | 1ULL << CAP_FSETID | 1ULL << CAP_FOWNER |
        1ULL << CAP_MKNOD | 1ULL << CAP_NET_RAW | 1ULL << CAP_SETGID | 1ULL << CAP_SETUID | 1ULL << CAP_SETFCAP |
        1ULL << CAP_SETPCAP | 1ULL << CAP_NET_BIND_SERVICE | 1ULL << CAP_SYS_CHROOT | 1ULL << CAP_KILL |
        1ULL << CAP_AUDIT_WRITE;
    for (int c = 0; c < 64; c++)
        if (!(keep >> c & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            fail("caps");
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2] = { { (uint32_t)keep, (uint32_t)keep, 0 }, { (uint32_t)(keep >> 32), (uint32_t)(keep >> 32), 0 } };
    if (syscall(SYS_capset, &h, d) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail("caps");
}

/* PID 1 of the new namespaces: set up, fork the payload, reap it (a server: until the parent kills PID 1). */
static int init_main(void)
{
    join_cgroups();
    build_root();
    if (sethostname("floor", 5) < 0)
        fail("hostname");
    lo_up();
    pid_t payload = fork();
    if (payload < 0)
        fail("fork");
    if (payload == 0) {
        drop_caps();
        char portarg[8];
        snprintf(portarg, sizeof portarg, "%d", port);
        char *cycle_argv[] = { "/bin/true", NULL }, *envp[] = { "PATH=/usr/bin:/bin", NULL };
        char *server_argv[] = { "/bin/busybox", "httpd", "-f", "-p", portarg, "-h", "/www", NULL };
        char **argv = port ? server_argv : cycle_argv;
        execve(argv[0], argv, envp);
        fail("exec");
    }
    int status;
    if (port) {
        /* The payload's copy of the report pipe is the last one once this one is closed, and its exec
         * closes it: the parent's read returns at httpd's exec, and only then does it start knocking. */
        close(report);
        for (;;) {
            pid_t p = wait(&status);
            if (p == payload || (p < 0 && errno != EINTR))
                _exit(1);               /* the server died: the parent's knocking sees PID 1 gone */
        }
    }
    if (waitpid(payload, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("payload");
    _exit(0);
}

static int host_netns = -1, ready_netns = -1;

static int step(char *why, size_t size, const char *name)
{
    snprintf(why, size, "%s %d", name, errno);
    return -1;
}

/* Knocks until the server accepts, then GETs the index on a fresh connection. The pause between knocks
 * is short because httpd listens within 0.1-1 ms of its exec (0 to 6 pauses in a trace here) and each
 * pause can add its whole length to the figure (50 us asked; with the default 50 us timer slack it is
 * ~0.13 ms, measured here); without one the parent would spend the second of this machine's two cores
 * on refused connects while the server starts on the other. */
static int knock_and_get(pid_t pid, char *why, size_t size)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct timespec pause = { 0, 50000 }, start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return step(why, size, "socket");
        int up = connect(s, (struct sockaddr *)&addr, sizeof addr), err = errno;
        close(s);
        if (up == 0)
            break;
        if (err != ECONNREFUSED)
            return errno = err, step(why, size, "connect");
        siginfo_t info = { 0 };         /* WNOWAIT: PID 1 stays unreaped, so its pid cannot be reused before the kill */
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
            return errno = ESRCH, step(why, size, "server");
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 5)
            return errno = ETIMEDOUT, step(why, size, "ready");
        nanosleep(&pause, NULL);
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval limit = { 5, 0 };    /* a server that stops answering fails the request instead of hanging the bench */
    static const char request[] = "GET /index.html HTTP/1.0\r\n\r\n";
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) < 0 ||
        connect(s, (struct sockaddr *)&addr, sizeof addr) < 0 || write(s, request, sizeof request - 1) != sizeof request - 1) {
        step(why, size, "request");
        return close(s), -1;
    }
    char answer[8192];
    size_t len = 0;
    for (ssize_t n; len < sizeof answer - 1 && (n = read(s, answer + len, sizeof answer - 1 - len)) != 0; len += (size_t)n)
        if (n < 0) {
            step(why, size, "response");
            return close(s), -1;
        }
    close(s);
    answer[len] = 0;
    const char *body = strstr(answer, "\r\n\r\n");
    errno = EPROTO;
    if (strncmp(answer, "HTTP/1.", 7) != 0 || strncmp(answer + 8, " 200 ", 5) != 0)
        return step(why, size, "status");
    if (!body || page_len < 0 || (size_t)(answer + len - (body + 4)) != (size_t)page_len || memcmp(body + 4, page, (size_t)page_len) != 0)
        return step(why, size, "body");
    return 0;
}

/* The parent makes its sockets inside the container's network namespace (a socket stays in the namespace
 * it was made in): one setns in and one out per fixture, as it makes no other socket meanwhile. */
static int serve(pid_t pid, char *why, size_t size)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/net", (int)pid);
    int netns = open(p, O_RDONLY | O_CLOEXEC);
    if (netns < 0 || setns(netns, CLONE_NEWNET) < 0) {
        step(why, size, "netns");
        return netns >= 0 ? close(netns) : 0, -1;
    }
    close(netns);
    int r = knock_and_get(pid, why, size);
    if (setns(host_netns, CLONE_NEWNET) < 0)
        return step(why, size, "setns");
    return r;
}

/* "--netns-ahead": a pool of one, refilled right after each reply, as the engine's pool refills at idle
 * priority. Back to back the refill still competes with the next request, as it does in the engine. */
static int prepare_netns(void)
{
    if (unshare(CLONE_NEWNET) < 0)
        return -1;
    ready_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    return ready_netns < 0 || setns(host_netns, CLONE_NEWNET) < 0 ? -1 : 0;
}

static int cycle(unsigned n)
{
    int pipefd[2];
    if (make_cgroups(n) < 0)
        return printf("err cgroup %d\n", errno), remove_cgroups(), -1;
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return printf("err pipe %d\n", errno), remove_cgroups(), -1;
    int ahead = ready_netns >= 0;
    if (ahead && setns(ready_netns, CLONE_NEWNET) < 0)
        return printf("err setns %d\n", errno), -1;
    report = pipefd[1];
    unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (ahead ? 0 : CLONE_NEWNET);
    pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid == 0) {
        close(pipefd[0]);
        init_main();
    }
    int err = errno;
    if (ahead && (setns(host_netns, CLONE_NEWNET) < 0 || close(ready_netns) < 0))
        return printf("err setns %d\n", errno), -1;
    ready_netns = -1;
    close(pipefd[1]);
    if (pid < 0)
        return close(pipefd[0]), printf("err clone %d\n", err), remove_cgroups(), -1;
    char why[64] = "";
    /* EOF: a cycle's PID 1 has exited; a server's httpd has exec'd (see init_main). */
    int failed = read(pipefd[0], why, sizeof why - 1) > 0;
    close(pipefd[0]);
    if (port) {
        failed = failed || serve(pid, why, sizeof why) < 0;
        kill(pid, SIGKILL);             /* PID 1's death takes the rest of its pid namespace */
    }
    int status;
    waitpid(pid, &status, 0);
    if (remove_cgroups() < 0 && !failed)
        failed = step(why, sizeof why, "rmdir");
    if (failed)
        return printf("err %s\n", why), -1;
    return printf("ok\n"), 0;
}

int main(int argc, char **argv)
{
    int netns_ahead = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--netns-ahead"))
            netns_ahead = 1;
        else if (!strcmp(argv[i], "--cgroup") && i + 1 < argc)
            group = argv[++i];
        else if (!strcmp(argv[i], "--root") && i + 1 < argc)
            root = argv[++i];
        else
            return fprintf(stderr, "usage: isotest-floor [--netns-ahead] [--cgroup NAME] [--root DIR]\n"), 2;
    }
    char index_path[512];
    snprintf(index_path, sizeof index_path, "%s/www/index.html", root);
    int index_fd = open(index_path, O_RDONLY | O_CLOEXEC);
    if (index_fd >= 0)
        page_len = read(index_fd, page, sizeof page), close(index_fd);   /* none: a server request answers "err body" */
    struct statfs fs;
    v2 = statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_MAGIC;
    char parent[256];
    static const char *controllers[] = { "memory", "cpu" };
    for (int i = 0; i < (v2 ? 1 : 2); i++) {
        if (v2)
            snprintf(parent, sizeof parent, "/sys/fs/cgroup/%s", group);
        else
            snprintf(parent, sizeof parent, "/sys/fs/cgroup/%s/%s", controllers[i], group);
        if (mkdir(parent, 0755) < 0 && errno != EEXIST)
            return fprintf(stderr, "isotest-floor: mkdir %s: %s (run as root)\n", parent, strerror(errno)), 1;
    }
    if (v2)
        put("/sys/fs/cgroup", "cgroup.subtree_control", "+memory +cpu"), put(parent, "cgroup.subtree_control", "+memory +cpu");
    setvbuf(stdout, NULL, _IOLBF, 0);
    char line[32];
    unsigned n = 0;
    host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (host_netns < 0 || (netns_ahead && prepare_netns() < 0))
        return fprintf(stderr, "isotest-floor: network namespace: %s\n", strerror(errno)), 1;
    while (fgets(line, sizeof line, stdin)) {
        char *end;
        if (!strcmp(line, "cycle\n"))
            port = 0;
        else if (!strncmp(line, "server ", 7) && (port = (int)strtol(line + 7, &end, 10)) > 0 && port < 65536 && *end == '\n')
            ;
        else {
            printf("err request %d\n", EINVAL);
            continue;
        }
        if (cycle(n++) == 0 && netns_ahead && prepare_netns() < 0)
            return fprintf(stderr, "isotest-floor: network namespace: %s\n", strerror(errno)), 1;
    }
    for (int i = 0; i < (v2 ? 1 : 2); i++) {
        if (v2)
            snprintf(parent, sizeof parent, "/sys/fs/cgroup/%s", group);
        else
            snprintf(parent, sizeof parent, "/sys/fs/cgroup/%s/%s", controllers[i], group);
        rmdir(parent);
    }
    return 0;
}
