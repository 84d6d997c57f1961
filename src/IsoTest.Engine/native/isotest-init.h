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
 * Built with -std=gnu11 -Wall -Wextra -Werror -static; libc only; no malloc.
 *
 * The files, one concern each:
 *   proto.c   datagrams on the control socket: send, receive, report an error and exit
 *   spec.c    the `spec` message: a table of record kinds, each with its arity, parser and limit
 *   shim.c    main: spec, cgroup files, clone of init, id maps, wait and `reaped`
 *   idmap.c   subordinate id ranges: newuidmap/newgidmap for a waiting process, or for ourselves, and the
 *             maker of the engine's shared user namespaces (`userns`)
 *   owners.c  the `own`/`disown` tool: a layer's file owners under subordinate ids, and back
 *   netmaker.c network namespaces made ahead in a shared user namespace (`netmaker`), and lo up
 *   spawner.c `spawn-server`: the engine's spawner, which forks and execs each agent (its shim)
 *   init.c    PID 1: setup order, then the request loop (start, exec, connect, stat, signal, kill)
 *   rootfs.c  the root: staging tmpfs, overlays, the rootless host mirror, read-only seal, pivot_root
 *   mounts.c  what goes on the root: /proc, /dev, /sys, /tmp, /run, masked paths, user mounts, files
 *   exec.c    starting a process: vfork, credentials, capabilities, no_new_privs, PATH lookup
 *   harden.c  descriptors, session keyring, rlimits, seccomp
 */
#ifndef ISOTEST_INIT_H
#define ISOTEST_INIT_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define CTL 3                   /* the control socket (PROTOCOL.md) */
#define NETNS_FD 4              /* with netns 2 or 3: a ready network namespace (PROTOCOL.md) */
#define USERNS_FD 5             /* with netns 3: the user namespace that owns it, the container's; with joinuser 1: the
                                 * engine's user namespace for the container's maps (fd 4 is then a placeholder unless netns 2:
                                 * a network namespace made ahead in that user namespace, Networking/UserNetnsPools.cs) */
#define MIRROR_FD 6             /* with mirror STAGE: a mount namespace the engine's maker made ahead, holding the
                                 * rootless host root's mirror at STAGE/r (rootfs.c, mirror_main) */
#define MAXMSG (256 * 1024)     /* largest datagram either side sends */
#define MAXFIELDS 8192          /* fields in one datagram */
#define MAXMNTS 256             /* bind, tmpfs and cow records */
#define MAXFILES 256            /* file records */
#define MAXCG1 32               /* cg1 records (one per v1 controller) */
#define MAXLOWER 128            /* lower records (image layers below the root record) */
#define MAXSUBMOUNTS 256        /* submounts records (host directories with mounts below them) */
#define MAXROTREES 256          /* rotree records (host trees the container may write nothing in) */
#define MAXEXECS 256            /* exec'd commands running at once */
#define MAXCONNECTS 256         /* connects in progress at once */
#define MAXBPF 4096             /* seccomp filter instructions (the kernel's BPF_MAXINSNS) */
#define STAGE "/tmp"            /* where the private tmpfs staging area is mounted (our namespace only); with a mirror
                                 * made ahead, where the maker mounted it instead (stage_dir) */
#define MAXSTAGE 200            /* a mirror's staging path (spec `mirror`, the maker's first datagram) */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---------------------------------------------------------------- proto.c */

/* One received datagram split into fields: f[0] is the verb, f[n] is NULL. `overflow` is set when the
 * datagram had more than MAXFIELDS fields or did not fit MAXMSG: the fields are then incomplete. */
struct msg { char buf[MAXMSG]; char *f[MAXFIELDS + 1]; int n, fds[3], nfds, overflow; };

const char *num(long long v);
void send_msg(int passfd, const char *verb, ...);
int recv_msg(struct msg *m);
void split_fields(struct msg *m, size_t r);
void drain(void);
_Noreturn void die(const char *stage, const char *detail);
struct open_how;
int openat2_retry(int dirfd, const char *path, struct open_how *how);   /* openat2, tried again on EAGAIN */
ssize_t hex_decode(const char *hex, unsigned char *out, size_t cap);    /* bytes, or -1 with EINVAL */
int write_file(const char *path, const char *text);

/* ---------------------------------------------------------------- spec.c */

struct mnt { char kind; const char *src, *dst, *opt; int ro, srcfd; };   /* kind: 'b'ind, 't'mpfs, 'c'ow */
struct copy { const char *src, *dst; mode_t mode; uid_t uid; gid_t gid; int srcfd; };

struct spec {
    const char *root, *uid_map, *gid_map, *newuidmap, *newgidmap, *hostname, *cg2, *cg1[MAXCG1], *lower[MAXLOWER], *submounts[MAXSUBMOUNTS], *rotrees[MAXROTREES];
    int readonly, netns, nmnts, nfiles, ncg1, nlower, nsubmounts, nrotrees, cg2_write, pid1, join_userns;
    const char *mirror;         /* mirror STAGE: fd 6 is a mount namespace made ahead, its staging tmpfs at STAGE */
    uid_t uid;
    gid_t gid;
    struct mnt mnts[MAXMNTS];
    struct copy files[MAXFILES];
    uint64_t seccomp[MAXBPF];   /* struct sock_filter, 8 bytes each; seccomp_len of them (0: unconfined) */
    int seccomp_len;
    unsigned seccomp_flags;
    unsigned long long layer_size, tmp_size, run_size;  /* tmpfs size= in bytes; 0: no cap */
};

/* The container's spec, read once by the shim before anything else; init inherits it. The strings
 * point into the received datagram, which lives as long as the agent. */
extern struct spec S;

void read_spec(void);
int parse_spec(struct msg *m, const char **why);   /* 0, or -1 with errno and *why; bench/agent-fuzz calls it */

/* ---------------------------------------------------------------- shim.c → init.c */

/* Cgroup files the shim opened from the host's view, for init to join before it unshares. */
struct cgroup_fds { int cg1[MAXCG1], cg2, cg2procs, cg2_need_write; };

/* This task's CPU mask before pin_here; `on` when pin_here narrowed it (see exec.c). */
struct pin { cpu_set_t saved; int on; };
void pin_here(struct pin *p);
void unpin(const struct pin *p);

_Noreturn void init_main(int syncfd, struct cgroup_fds *cg, const struct pin *pin);
/* Rootless: a user namespace maps the container's ids (made by the clone, or joined with netns 3 or joinuser 1). */
#define ROOTLESS (S.uid_map || S.netns == 3 || S.join_userns)

/* ---------------------------------------------------------------- idmap.c */

/* newuidmap and newgidmap (absolute paths) and the maps they write, in /proc/PID/uid_map syntax. */
struct idhelpers { const char *newuidmap, *newgidmap, *uid_map, *gid_map; };

/* Has the helpers map pid's user namespace: 0, or -1 with errno and what they said in why. */
int map_ids(pid_t pid, const struct idhelpers *h, char *why, size_t whylen);
/* Unshares a user namespace and has the helpers map it (from a child left outside): 0, or -1 as above. */
int unshare_mapped(const struct idhelpers *h, char *why, size_t whylen);
/* The first datagram was `userns ...`: make the engine's shared user namespace for those maps, send it, exit. */
_Noreturn void userns_main(struct msg *first);

/* ---------------------------------------------------------------- netholder.c */

_Noreturn void holder_main(struct msg *first);

/* ---------------------------------------------------------------- netmaker.c */

/* Brings lo up in the calling thread's network namespace: 0, or -1 with errno. */
int lo_up(void);
/* The first datagram was `netmaker`: in the user namespace on fd 5, make network namespaces on request, until exit or EOF. */
_Noreturn void netmaker_main(struct msg *first);

/* ---------------------------------------------------------------- filer.c */

/* The first datagram was `filer`: in the running container's user namespace on fd 5, make one file system call per request, until exit or EOF. */
_Noreturn void filer_main(struct msg *first);

/* ---------------------------------------------------------------- owners.c */

/* `isotest-init own|disown ...`: a layer's owners under subordinate ids (PROTOCOL.md "Owners"). */
int owners_main(int argc, char **argv);

/* ---------------------------------------------------------------- spawner.c */

/* `isotest-init spawn-server`: forks and execs agents for the engine from a small descriptor table. */
int spawner_main(const char *self);

/* ---------------------------------------------------------------- rootfs.c */

const char *fdpath(char buf[32], int fd);
/* The first datagram was `mirror LAYER_SIZE STAGE [SUBMOUNT...]`: make rootless host mirrors on request, each in a
 * mount namespace of its own, send each, until exit or EOF. */
_Noreturn void mirror_main(struct msg *first);
const char *tmpfs_opts(char buf[64], const char *mode, unsigned long long size);
int open_in_root(const char *path, int flags);
int target(const char *path, int dir);
int mask_paths(const char *prefix);
int use_root(int fd);
int try_make_ro(int fd);                   /* make_ro without dying: 0, or -1 with errno */
int own_proc(void);
int mount_in(const char *src, const char *dst, int dir, const char *type, unsigned long flags, const char *data);
void make_ro(int fd, const char *what);
extern const char *stage_dir;              /* the staging tmpfs's mount point: STAGE, or the mirror's (S.mirror) */
int overlay(const char *lower, const char *target_path);
void build_root(void);
void seal_root(void);
void enter_root(void);

/* ---------------------------------------------------------------- mounts.c */

void mount_system(void);
void mount_user(void);

/* ---------------------------------------------------------------- harden.c */

void close_fds_from(int first);
int cloexec_fds_from(int first);
void join_session_keyring(void);
void set_rlimits(void);
int install_seccomp(void);

/* ---------------------------------------------------------------- exec.c */

struct execerr { char stage[8]; int err; };

pid_t spawn(const int *stdio, int newpid, uid_t uid, gid_t gid, const char *cwd, char **argv, char **envp, struct execerr *err);
const char *failed_path(const struct execerr *e, const char *cwd, uid_t uid, char **argv);
int parse_command(struct msg *m, int at, const char **cwd, char ***env, char ***argv);

#endif
