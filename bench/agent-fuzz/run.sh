#!/bin/sh
# Fuzzes the init agent's spec and command parsers with libFuzzer (issue 8): bench/agent-fuzz/run.sh [SECONDS]
# Needs clang with its fuzzer runtime (Debian: apt-get install clang libclang-rt-14-dev; .ci/setup.sh).
# Prints libFuzzer's summary; the corpus it grows stays in $TMPDIR and is removed at the end.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
native="$here/../../src/IsoTest.Engine/native"
secs=${1:-60}
cc=$(command -v clang-14 || command -v clang)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Every file of the agent but the one with main (shim.c): spec.c's dispatch names every mode, so a hand-kept list
# broke each time a mode was added.
srcs=$(ls "$native"/*.c | grep -v '/shim\.c$')
"$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 -Wall -Wextra -Werror \
    -I"$native" -o "$work/fuzz_spec" "$here/fuzz_spec.c" $srcs
mkdir "$work/corpus"
# Seeds: a real spec as the engine sends it, and a start command (first byte: 0 = spec, 1 = command);
# written with | for NUL.
printf '|spec|root|host|readonly|0|netns|1|hostname|h|uid|0|gid|0|bind|/src|/dst|ro|tmpfs|/t|size=1|rw|cow|/a|/b|file|/f|/g|644|0|0|cg1|/sys/fs/cgroup/memory/x/tasks|sizes|1|2|3|seccomp|0|0600000000000000|' |
    tr '|' '\0' > "$work/corpus/spec"
printf 'xstart|/|1|PATH=/bin|sh|-c|true|' | tr '|' '\0' | sed 's/^x/\x01/' > "$work/corpus/start"
"$work/fuzz_spec" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 "$work/corpus" 2>&1 |
    grep -E 'Done|stat::number_of_executed_units|stat::peak_rss|ERROR|invariant|SUMMARY' || true
