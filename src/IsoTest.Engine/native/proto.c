/* Datagrams on the control socket (fd 3): NUL-terminated fields, descriptors as SCM_RIGHTS. */
#include "isotest-init.h"
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

/* Writes text to a file (a /proc id map, setgroups) in one write. */
int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC), e;
    ssize_t n = fd < 0 ? -1 : write(fd, text, strlen(text));
    e = errno, close(fd), errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Formats a number into one of a few rotating buffers, so several can appear in one send_msg call. */
const char *num(long long v)
{
    static char bufs[6][24];
    static int next;
    char *b = bufs[next++ % 6];
    snprintf(b, sizeof bufs[0], "%lld", v);
    return b;
}

/* Sends verb + NULL-terminated fields as one datagram, with an optional descriptor (SCM_RIGHTS). */
void send_msg(int passfd, const char *verb, ...)
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

/* Receives one datagram and splits it into fields. Returns 0 on EOF (the engine is gone). More than
 * three descriptors are closed; a datagram too long or with too many fields sets m->overflow. */
int recv_msg(struct msg *m)
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
    m->overflow = (mh.msg_flags & MSG_TRUNC) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        for (size_t i = 0; c->cmsg_type == SCM_RIGHTS && i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (m->nfds < 3)
                m->fds[m->nfds++] = fd;
            else
                close(fd);
        }
    split_fields(m, r);
    return 1;
}

/* Splits the r bytes in m->buf into NUL-terminated fields (a last field without its NUL still counts). */
void split_fields(struct msg *m, size_t r)
{
    m->n = 0;
    m->buf[r] = 0;
    for (char *p = m->buf; p < m->buf + r; p += strlen(p) + 1) {
        if (m->n == MAXFIELDS) {
            m->overflow = 1;
            break;
        }
        m->f[m->n++] = p;
    }
    m->f[m->n] = NULL;
}

/* A socket closed with unread data makes the engine's next recv fail once with ECONNRESET. The
 * shim, the last holder, drops what init never read (a `start` after an `error`, say) before it
 * exits, so the engine normally reads on to EOF. */
void drain(void)
{
    for (char c; recv(CTL, &c, 1, MSG_DONTWAIT | MSG_TRUNC) > 0;)
        continue;
}

/* Reports a setup failure (errno is the cause) and exits: the engine turns it into an exception. */
_Noreturn void die(const char *stage, const char *detail)
{
    send_msg(-1, "error", stage, num(errno), detail ? detail : "", NULL);
    if (getpid() != 1)
        drain();                                /* the shim, before it cloned init */
    _exit(1);
}

/* openat2 with RESOLVE_IN_ROOT or RESOLVE_BENEATH fails EAGAIN when a rename or a mount anywhere on the system raced
 * the walk of a "..": the kernel cannot then prove the walk stayed inside, and asks the caller to try again (a busy
 * engine mounts all the time). A few tries, then the EAGAIN stands. */
int openat2_retry(int dirfd, const char *path, struct open_how *how)
{
    int fd = -1;
    for (int i = 0; i < 64 && (fd = syscall(SYS_openat2, dirfd, path, how, sizeof *how)) < 0 && errno == EAGAIN; i++)
        continue;
    return fd;
}

/* Decodes hex (either case, nothing else) into at most CAP bytes: the byte count, or -1 with EINVAL for an odd length,
 * a character that is not a hex digit, or more than CAP bytes. The seccomp record, the owners tool's capabilities and
 * the filer's xattr values all arrive as hex (a field is NUL-terminated text). */
ssize_t hex_decode(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap)
        return errno = EINVAL, -1;
    for (size_t i = 0; i < n; i += 2) {
        int d[2];
        for (int j = 0; j < 2; j++) {
            char c = hex[i + j];
            d[j] = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d[j] < 0)
                return errno = EINVAL, -1;
        }
        out[i / 2] = (unsigned char)(d[0] << 4 | d[1]);
    }
    return (ssize_t)(n / 2);
}
