#!/usr/bin/env python3
"""Splits engine container starts into their steps, from the traces start-trace.patch writes.

The patched engine appends one line per CreateAsync to /tmp/isotest-engine-trace-{root,rootless}
(absolute start, then microseconds since the previous mark); the patched shim and init append one
line per container to /tmp/isotest-init-trace-{root,rootless} (the shim's first instruction as t0,
then the same deltas). Both clocks are CLOCK_MONOTONIC (.NET's Stopwatch on Linux), so an init line
belongs to the engine line whose start..started interval holds its t0.

    python3 split.py DIR [root|rootless ...]

DIR holds the trace files (copy them out of /tmp after a run). Prints, per root filesystem, the
median and p90 of each step; the first 20 starts of each are skipped (JIT, first mirror).
"""
import collections
import statistics
import sys


def read(path):
    """[(head, [(mark, value), ...])]: head is the words without '=', the first mark is the absolute t0."""
    lines = []
    for line in open(path):
        head, marks = [], []
        for word in line.split():
            if "=" in word and not word.startswith(("rootless=", "mirror=")):
                name, value = word.split("=", 1)
                marks.append((name, int(value)))
            else:
                head.append(word)
        lines.append((" ".join(head), marks))
    return lines


def absolute(marks):
    """The deltas as absolute times, keyed by mark name (t0 under the first mark's name)."""
    at = marks[0][1]
    times = {marks[0][0]: at}
    for name, delta in marks[1:]:
        at += delta
        times[name] = at
    return times


# (label, from mark, to mark): E = the engine's process, S = the shim, I = init (PID 1), → = a hand-off.
STEPS = [
    ("E prepare (resolve root, user, ports)", "E:t0", "E:prepared"),
    ("E cgroup made (mkdir + limits)", "E:prepared", "E:launch"),
    ("E network attached", "E:launch", "E:netattach"),
    ("E user namespace + mirror taken", "E:netattach", "E:userns+mirror"),
    ("E messages + socket pairs", "E:userns+mirror", "E:msgs+pairs"),
    ("→ spawner fork + exec of the shim", "E:msgs+pairs", "I:shim"),
    ("S reads the spec", "I:shim", "I:spec"),
    ("S cgroup fds, setns", "I:spec", "I:preclone"),
    ("S clone of init (new namespaces)", "I:preclone", "I:begin"),
    ("I waits for its id maps", "I:begin", "I:sync"),
    ("I joins its cgroups", "I:sync", "I:cgroups"),
    ("I builds the root", "I:cgroups", "I:build"),
    ("I mounts /proc /dev /sys ...", "I:seal", "I:system"),
    ("I pivot_root + umount old root", "I:user", "I:enter"),
    ("I hostname, lo up", "I:enter", "I:ident"),
    ("I sends created", "I:ident", "I:created"),
    ("→ engine sees created", "I:created", "E:created"),
    ("I gets start", "I:created", "I:startrecv"),
    ("I vfork + exec of the payload", "I:startrecv", "I:spawn"),
    ("I sends started", "I:spawn", "I:startedmsg"),
    ("→ engine sees started, CreateAsync returns", "I:startedmsg", "E:started"),
    ("TOTAL (the engine's create + start)", "E:t0", "E:started"),
]


def main():
    directory, modes = sys.argv[1], sys.argv[2:] or ["root", "rootless"]
    for mode in modes:
        engine = [absolute(m) for _, m in read(f"{directory}/isotest-engine-trace-{mode}")]
        by_root = collections.defaultdict(lambda: collections.defaultdict(list))
        for head, marks in read(f"{directory}/isotest-init-trace-{mode}"):
            init = absolute([("shim", marks[0][1])] + marks[1:])
            owner = [e for e in engine if e["t0"] <= init["shim"] <= e["started"]]
            if len(owner) != 1:
                continue  # a start whose engine line is missing (a failed start) or ambiguous
            times = {f"E:{k}": v for k, v in owner[0].items()} | {f"I:{k}": v for k, v in init.items()}
            for label, a, b in STEPS:
                by_root[head][label].append(times[b] - times[a])
        for head, steps in by_root.items():
            print(f"{mode}: {head}  ({len(steps[STEPS[-1][0]])} starts)")
            for label, values in steps.items():
                values = values[20:] if len(values) > 40 else values
                p90 = sorted(values)[int(len(values) * 0.9)]
                print(f"   {label:<46} median {statistics.median(values):7.0f} µs   p90 {p90:7.0f}")


if __name__ == "__main__":
    main()
