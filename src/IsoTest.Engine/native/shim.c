/* The shim: the process the engine spawned. It reads the spec, opens the cgroup files as the host
 * sees them, clones init into the new namespaces, writes init's id maps (rootless; through
 * newuidmap/newgidmap with subordinate ranges), and then only waits for init, to report `reaped`
 * with its rusage. With arguments it is the owners tool instead (owners.c). */
#include "isotest-init.h"
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

static struct cgroup_fds cg = { .cg2 = -1, .cg2procs = -1 };

/* clone3 can place the child straight into a v2 cgroup (Linux 5.7); on any refusal, plain clone and
 * init writes 0 into cgroup.procs itself: an old kernel (ENOSYS, E2BIG) just takes that path, and a
 * refused move (EACCES: cgroup v2's common-ancestor rule) is then reported as stage "cgroup", not as
 * a namespace problem, which the plain clone would report again. Raw syscalls: glibc wraps neither
 * without a stack. */
static pid_t clone_init(uint64_t flags)
{
    if (cg.cg2 >= 0 && S.cg2_write)
        cg.cg2_need_write = 1;
    else if (cg.cg2 >= 0) {
        struct { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
                 set_tid, set_tid_size, cgroup; } args = { .flags = flags | CLONE_INTO_CGROUP,
                 .exit_signal = SIGCHLD, .cgroup = (uint64_t)cg.cg2 };
        pid_t pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid >= 0)
            return pid;
        cg.cg2_need_write = 1;
    }
    return syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

/* Opens the cgroup files now, as the host sees them: after the clone, init is in new namespaces. */
static void open_cgroups(void)
{
    for (int i = 0; i < S.ncg1; i++)
        if ((cg.cg1[i] = open(S.cg1[i], O_WRONLY | O_CLOEXEC)) < 0)
            die("cgroup", S.cg1[i]);
    if (S.cg2) {
        char procs[4096];
        snprintf(procs, sizeof procs, "%s/cgroup.procs", S.cg2);
        if ((cg.cg2 = open(S.cg2, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
            (cg.cg2procs = open(procs, O_WRONLY | O_CLOEXEC)) < 0)
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

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "spawn-server"))
        return spawner_main(argv[0]);           /* not an agent: the engine's spawner (spawner.c) */
    if (argc > 1)
        return owners_main(argc, argv);         /* not an agent: the layer owners tool (owners.c) */
    prctl(PR_SET_PDEATHSIG, SIGKILL);           /* the engine's spawning thread dies -> so do we */
    /* Only the descriptors PROTOCOL.md lists: whatever started the engine may have left others open
     * without CLOEXEC (a shell's `exec 7<file`), and the engine's posix_spawn passes them on. */
    close_fds_from(MIRROR_FD + 1);
    read_spec();
    if (!S.mirror)
        close(MIRROR_FD);                       /* not ours unless a mirror record says so */
    if (S.netns < 2)
        close(NETNS_FD);                        /* not ours unless netns 2 or 3 says so */
    if (S.netns != 3 && !S.join_userns)
        close(USERNS_FD);
    open_cgroups();
    /* joinuser 1 (rootless with subordinate ranges): the engine made one user namespace per distinct maps, mapped
     * once by newuidmap/newgidmap (idmap.c, userns_main), and every container with those maps joins it here; what
     * it clones next (pid, mount, net, uts, ipc namespaces, then init's cgroup namespace) belongs to it. So a start
     * runs no setuid helper. What containers sharing it can do to each other: PROTOCOL.md "Shared user namespaces". */
    if (S.join_userns && (setns(USERNS_FD, CLONE_NEWUSER) < 0 || close(USERNS_FD) < 0))
        die("userns", "setns");
    /* netns 3 (rootless networks): the namespace belongs to a user namespace the holder made for this
     * container (fd 5); joining that first gives us the capabilities the netns setns needs, and it is
     * the container's user namespace: no clone makes one, no maps are written */
    if (S.netns == 3 && (setns(USERNS_FD, CLONE_NEWUSER) < 0 || close(USERNS_FD) < 0))
        die("network", "setns user");
    /* netns 2: the engine made the namespace ahead of time (fd 4, lo up); init inherits it from us */
    if (S.netns >= 2 && (setns(NETNS_FD, CLONE_NEWNET) < 0 || close(NETNS_FD) < 0))
        die("network", "setns");
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) < 0)
        die("clone", "pipe");
    /* init starts on this CPU (pin_here, exec.c): we only send a few messages before wait4 */
    struct pin pin;
    pin_here(&pin);
    /* With a mirror made ahead, init joins the mount namespace on fd 6 (build_root) instead of copying ours. */
    pid_t pid = clone_init(CLONE_NEWPID | (S.mirror ? 0 : CLONE_NEWNS) | CLONE_NEWUTS | CLONE_NEWIPC |
                           (S.netns == 1 ? CLONE_NEWNET : 0) | (S.uid_map ? CLONE_NEWUSER : 0));
    if (pid < 0)
        die("clone", "");
    if (pid == 0) {
        close(sync[1]);
        init_main(sync[0], &cg, &pin);
    }
    unpin(&pin);                                /* init gives itself its mask back once it runs */
    close(sync[0]);
    send_msg(-1, "pid", num(pid), NULL);
    /* with subordinate ranges (an idmap record) newuidmap/newgidmap write the maps, setgroups stays allowed */
    char why[256];
    struct idhelpers helpers = { S.newuidmap, S.newgidmap, S.uid_map, S.gid_map };
    if (S.uid_map && (S.newuidmap ? map_ids(pid, &helpers, why, sizeof why) : write_maps(pid)) < 0) {
        int e = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        errno = e;
        if (S.newuidmap)
            die("idmap", why);
        die("uidmap", S.uid_map);
    }
    /* Init's mount namespace, held past init's exit and handed to the engine with `reaped`: the last reference
     * tears down every mount of the container, and each overlay's teardown waits for an expedited RCU grace period
     * (a rootless host root has ~45 of them: 3 ms here when quiet, tens of ms under load). Held here, init's exit does
     * not wait for that, nor does `reaped`; the engine closes it off the start/stop path. -1: init's exit does it.
     * With a mirror made ahead, init's mount namespace is the one on fd 6 (init joins it once it runs): that one. */
    char nspath[64];
    snprintf(nspath, sizeof nspath, "/proc/%d/ns/mnt", (int)pid);
    int mntns = S.mirror ? MIRROR_FD : open(nspath, O_RDONLY | O_CLOEXEC);
    (void)!write(sync[1], "1", 1);
    close(sync[1]);
    /* hold nothing init or the payload uses: the engine waits for EOF on the log sockets */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int i = 0; i < 3; i++)
        dup2(null, i);
    for (int i = 0; i < S.ncg1; i++)
        close(cg.cg1[i]);
    if (cg.cg2 >= 0)
        close(cg.cg2), close(cg.cg2procs);
    int st;
    struct rusage ru;
    while (wait4(pid, &st, __WALL, &ru) < 0 && errno == EINTR)
        continue;
    drain();
    send_msg(mntns, "reaped", num(st), num(ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec),
             num(ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec), num(ru.ru_maxrss), NULL);
    return 0;
}
