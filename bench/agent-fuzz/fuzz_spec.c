/* libFuzzer harness for the init agent's parsers of outside input (issue 8, "Fuzz"): the `spec`
 * record table (spec.c) and the command of `start`/`exec` (exec.c's parse_command), fed datagrams as
 * recv_msg would split them. Built with ASan and UBSan by run.sh. Checks, beyond no crash: a rejected
 * spec says why (`error spec <errno> <detail>`, errno EINVAL or E2BIG, a non-empty detail), and an
 * accepted one stays inside every table's limit. */
#include "../../src/IsoTest.Engine/native/isotest-init.h"
#include <stdio.h>
#include <stdlib.h>

static struct msg m;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= sizeof m.buf)
        size = sizeof m.buf - 1;
    /* the first byte picks the parser; the rest is the datagram */
    int command = size > 0 && data[0] & 1;
    if (size > 0)
        data++, size--;
    memcpy(m.buf, data, size);
    m.nfds = m.overflow = 0;
    split_fields(&m, size);
    if (command) {
        const char *cwd;
        char **env, **argv;
        if (parse_command(&m, 1, &cwd, &env, &argv) == 0) {
            int n = 0;
            while (argv[n])
                n++;
            check(argv >= m.f && argv + n <= m.f + m.n, "argv inside the fields");
            for (int i = 0; env[i]; i++)
                check(i < m.n, "env inside the fields");
        }
        return 0;
    }
    static const struct spec fresh = { .root = "host", .netns = 1 };
    memcpy(&S, &fresh, sizeof S);
    const char *why = NULL;
    errno = 0;
    if (parse_spec(&m, &why) < 0) {
        check(errno == EINVAL || errno == E2BIG, "errno is EINVAL or E2BIG");
        check(why && *why && strlen(why) < 256, "a detail says why");
    } else {
        check(S.nmnts <= MAXMNTS && S.nfiles <= MAXFILES && S.ncg1 <= MAXCG1 && S.seccomp_len <= MAXBPF, "tables bounded");
        check(S.netns >= 0 && S.netns <= 3 && (S.readonly == 0 || S.readonly == 1), "flags in range");
        for (int i = 0; i < S.nmnts; i++)
            check(S.mnts[i].dst && (S.mnts[i].kind == 't' || S.mnts[i].src[0] == '/'), "mounts complete");
    }
    return 0;
}
