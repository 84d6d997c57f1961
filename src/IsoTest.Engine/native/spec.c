/* The `spec` message (PROTOCOL.md, "spec records"): a table of record kinds, each with its number of
 * values, its parser and its limit. Anything the table does not allow is `error spec <errno> <what>`:
 * an unknown key, a record cut short, a value of the wrong form, or one record too many. */
#include "isotest-init.h"
#include <stdio.h>
#include <stdlib.h>

struct spec S = { .root = "host", .netns = 1 };

static struct msg spec_msg;     /* the spec's strings point into this buffer for the agent's lifetime */

static char why[256];           /* the detail of a rejected record */

/* Each parser returns 0, or -1 with errno set and `why` saying what was wrong. */
static int bad(int err, const char *key, const char *fmt, const char *value)
{
    snprintf(why, sizeof why, "%.64s: ", key);
    char v[80];
    snprintf(v, sizeof v, "%.64s%s", value, strlen(value) > 64 ? "..." : "");
    snprintf(why + strlen(why), sizeof why - strlen(why), fmt, v);
    errno = err;
    return -1;
}

static int number(const char *key, const char *v, int base, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, base);
    if (!*v || *end || errno || n > max || *v == '-' || *v == '+' || *v == ' ')
        return bad(EINVAL, key, base == 8 ? "'%s' is not an octal mode" : "'%s' is not a number in range", v);
    *out = n;
    return 0;
}

static int flag(const char *key, const char *v, const char *no, const char *yes, int *out)
{
    if (strcmp(v, no) && strcmp(v, yes)) {
        char fmt[64];
        snprintf(fmt, sizeof fmt, "'%%s' is neither %s nor %s", no, yes);
        return bad(EINVAL, key, fmt, v);
    }
    *out = !strcmp(v, yes);
    return 0;
}

static int absolute(const char *key, const char *v)
{
    return v[0] == '/' ? 0 : bad(EINVAL, key, "'%s' is not an absolute path", v);
}

static int full(const char *key, int n, int max)
{
    if (n < max)
        return 0;
    char fmt[64];
    snprintf(fmt, sizeof fmt, "more than %d records (the agent's limit)%%s", max);
    return bad(E2BIG, key, fmt, "");
}

static int rec_root(const char *k, char **v)
{
    if (strcmp(v[0], "host") && absolute(k, v[0]) < 0)
        return -1;
    S.root = v[0];
    return 0;
}

/* An image's further layers, each below the previous one (the root record is the topmost). */
static int rec_lower(const char *k, char **v)
{
    if (absolute(k, v[0]) < 0 || full(k, S.nlower, MAXLOWER) < 0)
        return -1;
    S.lower[S.nlower++] = v[0];
    return 0;
}

/* A host directory with mounts below it (the engine read its mount table once): the rootless host root
 * mirrors it without first trying the overlay the kernel would refuse (rootfs.c, mirror_dir). */
static int rec_submounts(const char *k, char **v)
{
    if (absolute(k, v[0]) < 0 || full(k, S.nsubmounts, MAXSUBMOUNTS) < 0)
        return -1;
    S.submounts[S.nsubmounts++] = v[0];
    return 0;
}

/* A host directory whose whole tree no id of the container may write in (the engine walked it once): the rootless
 * host root's mirror binds it read-only instead of making an overlay of it (rootfs.c, mirror_dir). */
static int rec_rotree(const char *k, char **v)
{
    if (absolute(k, v[0]) < 0 || full(k, S.nrotrees, MAXROTREES) < 0)
        return -1;
    S.rotrees[S.nrotrees++] = v[0];
    return 0;
}

static int rec_readonly(const char *k, char **v) { return flag(k, v[0], "0", "1", &S.readonly); }
/* joinuser 1: the shim joins the user namespace on fd 5 (the engine's, shared by the containers with these maps). */
static int rec_joinuser(const char *k, char **v) { return flag(k, v[0], "0", "1", &S.join_userns); }

/* mirror STAGE: fd 6 is a mount namespace the engine's maker made ahead with the rootless host root's mirror on a
 * staging tmpfs at STAGE (rootfs.c, mirror_main). Bounded: the staging's paths go into overlay options. */
static int rec_mirror(const char *k, char **v)
{
    if (absolute(k, v[0]) < 0)
        return -1;
    if (strlen(v[0]) > MAXSTAGE)
        return bad(E2BIG, k, "'%s' is longer than the agent's limit for a staging path", v[0]);
    S.mirror = v[0];
    return 0;
}
static int rec_pid1(const char *k, char **v) { return flag(k, v[0], "0", "1", &S.pid1); }

static int rec_userns(const char *k, char **v)
{
    if (!*v[0] || !*v[1])
        return bad(EINVAL, k, "an empty id map%s", "");
    S.uid_map = v[0], S.gid_map = v[1];
    return 0;
}

/* newuidmap and newgidmap write the userns record's maps (subordinate ranges); absent, the shim does. */
static int rec_idmap(const char *k, char **v)
{
    if (absolute(k, v[0]) < 0 || absolute(k, v[1]) < 0)
        return -1;
    S.newuidmap = v[0], S.newgidmap = v[1];
    return 0;
}

static int rec_netns(const char *k, char **v)
{
    if (strcmp(v[0], "0") && strcmp(v[0], "1") && strcmp(v[0], "2") && strcmp(v[0], "3"))
        return bad(EINVAL, k, "'%s' is not 0, 1, 2 or 3", v[0]);
    S.netns = v[0][0] - '0';
    return 0;
}

static int rec_hostname(const char *k, char **v) { (void)k; S.hostname = v[0]; return 0; }

static int rec_uid(const char *k, char **v)
{
    unsigned long n;
    if (number(k, v[0], 10, 0xfffffffeUL, &n) < 0)
        return -1;
    if (k[0] == 'u')
        S.uid = n;
    else
        S.gid = n;
    return 0;
}

static int rec_bind(const char *k, char **v)
{
    int ro;
    if (full(k, S.nmnts, MAXMNTS) < 0 || absolute(k, v[0]) < 0 || flag(k, v[2], "rw", "ro", &ro) < 0)
        return -1;
    S.mnts[S.nmnts++] = (struct mnt){ .kind = 'b', .src = v[0], .dst = v[1], .ro = ro, .srcfd = -1 };
    return 0;
}

static int rec_tmpfs(const char *k, char **v)
{
    int ro;
    if (full(k, S.nmnts, MAXMNTS) < 0 || flag(k, v[2], "rw", "ro", &ro) < 0)
        return -1;
    S.mnts[S.nmnts++] = (struct mnt){ .kind = 't', .dst = v[0], .opt = v[1], .ro = ro, .srcfd = -1 };
    return 0;
}

static int rec_cow(const char *k, char **v)
{
    if (full(k, S.nmnts, MAXMNTS) < 0 || absolute(k, v[0]) < 0)
        return -1;
    S.mnts[S.nmnts++] = (struct mnt){ .kind = 'c', .src = v[0], .dst = v[1], .srcfd = -1 };
    return 0;
}

static int rec_file(const char *k, char **v)
{
    unsigned long mode, uid, gid;
    if (full(k, S.nfiles, MAXFILES) < 0 || absolute(k, v[0]) < 0 || number(k, v[2], 8, 07777, &mode) < 0 ||
        number(k, v[3], 10, 0xfffffffeUL, &uid) < 0 || number(k, v[4], 10, 0xfffffffeUL, &gid) < 0)
        return -1;
    S.files[S.nfiles++] = (struct copy){ v[0], v[1], mode, uid, gid, -1 };
    return 0;
}

static int rec_cg1(const char *k, char **v)
{
    if (full(k, S.ncg1, MAXCG1) < 0 || absolute(k, v[0]) < 0)
        return -1;
    S.cg1[S.ncg1++] = v[0];
    return 0;
}

static int rec_cg2(const char *k, char **v)
{
    if (absolute(k, v[0]) < 0)
        return -1;
    S.cg2 = v[0];
    return 0;
}

/* cg2join clone|write: how init joins the cg2 group; `write` skips CLONE_INTO_CGROUP (the path kernels
 * before 5.7 take), so the engine's tests can run that path on any kernel. */
static int rec_cg2join(const char *k, char **v) { return flag(k, v[0], "clone", "write", &S.cg2_write); }

/* seccomp FLAGS HEX: the filter as the hex of its struct sock_filter array (the engine compiles it). */
static int rec_seccomp(const char *k, char **v)
{
    unsigned long flags;
    size_t len = strlen(v[1]);
    if (number(k, v[0], 10, 0xffffffffUL, &flags) < 0)
        return -1;
    if (len == 0 || len % 16)
        return bad(EINVAL, k, "the filter is not a whole number of 8-byte instructions%s", "");
    if (len / 16 > MAXBPF) {
        char fmt[80];
        snprintf(fmt, sizeof fmt, "more than %d instructions (the kernel's limit)%%s", MAXBPF);
        return bad(E2BIG, k, fmt, "");
    }
    if (hex_decode(v[1], (unsigned char *)S.seccomp, sizeof S.seccomp) < 0)
        return bad(EINVAL, k, "the filter is not hex%s", "");
    S.seccomp_len = len / 16;
    S.seccomp_flags = flags;
    return 0;
}

/* sizes LAYER TMP RUN: tmpfs caps in bytes for the writable layer, /tmp and /run (0: no cap). */
static int rec_sizes(const char *k, char **v)
{
    unsigned long long *to[] = { &S.layer_size, &S.tmp_size, &S.run_size };
    for (int i = 0; i < 3; i++) {
        unsigned long n;
        if (number(k, v[i], 10, ~0UL, &n) < 0)
            return -1;
        *to[i] = n;
    }
    return 0;
}

static const struct record {
    const char *key;
    int values;
    int (*parse)(const char *key, char **values);
} records[] = {
    { "root", 1, rec_root }, { "lower", 1, rec_lower }, { "readonly", 1, rec_readonly }, { "userns", 2, rec_userns },
    { "idmap", 2, rec_idmap },
    { "netns", 1, rec_netns }, { "hostname", 1, rec_hostname }, { "uid", 1, rec_uid }, { "gid", 1, rec_uid },
    { "bind", 3, rec_bind }, { "tmpfs", 3, rec_tmpfs }, { "cow", 2, rec_cow }, { "file", 5, rec_file },
    { "cg1", 1, rec_cg1 }, { "cg2", 1, rec_cg2 }, { "cg2join", 1, rec_cg2join }, { "seccomp", 2, rec_seccomp }, { "sizes", 3, rec_sizes },
    { "pid1", 1, rec_pid1 }, { "joinuser", 1, rec_joinuser },
    { "submounts", 1, rec_submounts }, { "rotree", 1, rec_rotree }, { "mirror", 1, rec_mirror },
};

/* Parses a received `spec` into S: 0, or -1 with errno set and *why saying what was wrong. */
int parse_spec(struct msg *m, const char **why_out)
{
    *why_out = why;
    errno = EINVAL;
    if (m->n < 1 || strcmp(m->f[0], "spec") != 0) {
        snprintf(why, sizeof why, "'%.64s' came first; the first message must be spec", m->n ? m->f[0] : "");
        return -1;
    }
    if (m->overflow) {
        snprintf(why, sizeof why, "more than %d fields or %d bytes (the agent's limit)", MAXFIELDS, MAXMSG);
        errno = E2BIG;
        return -1;
    }
    if (m->nfds) {
        snprintf(why, sizeof why, "descriptors: a spec carries none");
        return -1;
    }
    for (int i = 1; i < m->n;) {
        const char *k = m->f[i];
        const struct record *r = NULL;
        for (size_t j = 0; j < sizeof records / sizeof records[0]; j++)
            if (!strcmp(k, records[j].key))
                r = &records[j];
        if (!r)
            return bad(EINVAL, k, "unknown record%s", "");
        if (i + r->values >= m->n) {
            snprintf(why, sizeof why, "%.64s: %d values expected, %d given", k, r->values, m->n - i - 1);
            errno = EINVAL;
            return -1;
        }
        if (r->parse(k, &m->f[i + 1]) < 0)
            return -1;
        i += 1 + r->values;
    }
    /* one user namespace: made by the clone (userns), or joined from fd 5 (joinuser, netns 3), never two */
    if (S.join_userns && (S.uid_map || S.netns == 3)) {
        snprintf(why, sizeof why, "joinuser: not with a userns record or netns 3 (each names the user namespace already)");
        errno = EINVAL;
        return -1;
    }
    /* the maker's mirror lives in the engine's user namespace and stands in for the host root only */
    if (S.mirror && (!S.join_userns || strcmp(S.root, "host") != 0)) {
        snprintf(why, sizeof why, "mirror: only with joinuser 1 and root host (the mirror is the host root's, in that user namespace)");
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* Reads the first message, which must be `spec`, into S; any fault is reported and ends the agent. */
void read_spec(void)
{
    const char *why;
    if (!recv_msg(&spec_msg))
        _exit(1);
    if (spec_msg.n >= 1 && !strcmp(spec_msg.f[0], "netholder"))
        holder_main(&spec_msg);                          /* not a container: the rootless network holder */
    if (spec_msg.n >= 1 && !strcmp(spec_msg.f[0], "userns"))
        userns_main(&spec_msg);                          /* not a container: a shared user namespace's maker */
    if (spec_msg.n >= 1 && !strcmp(spec_msg.f[0], "mirror"))
        mirror_main(&spec_msg);                          /* not a container: the host mirrors' maker */
    if (spec_msg.n >= 1 && !strcmp(spec_msg.f[0], "netmaker"))
        netmaker_main(&spec_msg);                        /* not a container: a shared user namespace's netns maker */
    if (spec_msg.n >= 1 && !strcmp(spec_msg.f[0], "filer"))
        filer_main(&spec_msg);                           /* not a container: a running container's files, rootless */
    if (parse_spec(&spec_msg, &why) < 0)
        die("spec", why);
}
