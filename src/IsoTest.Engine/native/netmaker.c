/* The engine's network namespace maker for a shared user namespace (PROTOCOL.md "Network namespaces made ahead",
 * Networking/UserNetnsPools.cs): rootless with subordinate ranges, a container's network namespace must belong to
 * the user namespace it joins (fd 5, joinuser 1). That one exists before the container, so a namespace owned by it
 * can be made ahead of time here, as root's pool does (Networking/NetnsPool.cs), and the shim, in that user
 * namespace, joins it with netns 2 instead of cloning a new one (~0.6 ms of kernel work, plus lo up in init). */
#include "isotest-init.h"
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

int lo_up(void)
{
    struct ifreq r = { 0 };
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    strcpy(r.ifr_name, "lo");
    int ok = s >= 0 && ioctl(s, SIOCGIFFLAGS, &r) == 0 && (r.ifr_flags |= IFF_UP | IFF_RUNNING, ioctl(s, SIOCSIFFLAGS, &r) == 0);
    int e = errno;
    if (s >= 0)
        close(s);
    errno = e;
    return ok ? 0 : -1;
}

/* Each `make` unshares a fresh network namespace, brings lo up, sends /proc/self/ns/net and goes back to a namespace
 * of its own, so the engine's descriptor is the only hold on what it sent: one namespace per container, never reused,
 * gone with that container, so nothing passes from one container to the next. (Back to the host's namespace is not
 * possible: it belongs to the initial user namespace, where the maker has no capability.) At SCHED_IDLE, as the root pool's thread: the kernel work runs only on a core that
 * would otherwise idle (the engine also asks only while no container is being created). */
_Noreturn void netmaker_main(struct msg *first)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "isotest-netns");        /* in ps, and not counted as a container's shim by the leak tests */
    if (first->n != 1)
        errno = EINVAL, die("spec", "netmaker: no values expected");
    /* musl's sched_setscheduler is a stub (ENOSYS): the system call itself. Failing it only costs priority. */
    struct sched_param idle = { 0 };
    (void)syscall(SYS_sched_setscheduler, 0, SCHED_IDLE, &idle);
    if (setns(USERNS_FD, CLONE_NEWUSER) < 0 || close(USERNS_FD) < 0)
        die("userns", "setns");
    int home;
    if (unshare(CLONE_NEWNET) < 0 || (home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
        die("network", "unshare");
    static struct msg m;
    while (recv_msg(&m) && !(m.n == 1 && !strcmp(m.f[0], "exit"))) {
        if (m.n != 1 || strcmp(m.f[0], "make") != 0)
            errno = EINVAL, die("spec", "netmaker: only make or exit follows");
        if (unshare(CLONE_NEWNET) < 0)
            die("network", "unshare");
        if (lo_up() < 0)
            die("network", "lo");
        int ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (ns < 0)
            die("network", "/proc/self/ns/net");
        send_msg(ns, "netns", NULL);
        close(ns);
        if (setns(home, CLONE_NEWNET) < 0)
            die("network", "setns");
    }
    _exit(0);
}
