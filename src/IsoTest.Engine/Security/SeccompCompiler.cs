using System.Globalization;
using System.Text;
using IsoTest.Seccomp;

namespace IsoTest.Engine.Security;

/// <summary>A compiled filter: what seccomp(SECCOMP_SET_MODE_FILTER, Flags, &amp;prog) takes.</summary>
/// <param name="Filter">struct sock_filter[] (8 bytes each, little-endian as on x86_64 and aarch64).</param>
/// <param name="Flags">SECCOMP_FILTER_FLAG_* the profile asked for.</param>
/// <param name="Architectures">The architectures the filter dispatches (every other one is killed).</param>
internal sealed record SeccompProgram(byte[] Filter, uint Flags, IReadOnlyList<SeccompArch> Architectures)
{
    /// <summary>Number of BPF instructions.</summary>
    public int Length => Filter.Length / 8;
}

/// <summary>
/// Compiles a Docker-format profile into classic BPF for one architecture, capability set and kernel, the way
/// runc + libseccomp read it (moby profiles/seccomp): includes/excludes are decided first (caps against the
/// bounding set, arches against the native architecture, minKernel against the running kernel), then
/// <list type="number">
/// <item>the audit architecture is checked: a foreign one is killed (SECCOMP_RET_KILL_PROCESS), as libseccomp's
/// bad-arch action does; x32 (x86_64's entry with bit 30 of the number) is dispatched only if the profile covers it;</item>
/// <item>the syscall number is dispatched by a binary decision tree over ranges of numbers that share a body;</item>
/// <item>a body tries the syscall's argument rules in profile order (64-bit comparisons, both halves), then its
/// unconditional rule, then the default action.</item>
/// </list>
/// Names a table does not know for an architecture are skipped, as runc skips them.
/// </summary>
internal static class SeccompCompiler
{
    // struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
    private const uint OffsetNr = 0;
    private const uint OffsetArch = 4;
    private const uint OffsetArgs = 16;

    // SECCOMP_RET_* (linux/seccomp.h).
    public const uint RetKillProcess = 0x80000000;
    public const uint RetKillThread = 0x00000000;
    public const uint RetTrap = 0x00030000;
    public const uint RetErrno = 0x00050000;
    public const uint RetTrace = 0x7ff00000;
    public const uint RetLog = 0x7ffc0000;
    public const uint RetAllow = 0x7fff0000;
    public const uint RetDataMask = 0x0000ffff;

    /// <summary>Docker's default capabilities (moby oci/caps/defaults.go), the bounding set the agent gives every payload.</summary>
    public static readonly IReadOnlySet<string> DockerDefaultCapabilities = new HashSet<string>(StringComparer.Ordinal)
    {
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    };

    /// <summary>Compiles <paramref name="profile"/> for <paramref name="native"/> (and the sub-architectures it covers there).</summary>
    public static SeccompProgram Compile(SeccompDocument profile, SeccompArch native, IReadOnlySet<string> capabilities, Version kernel)
    {
        if (native is not (SeccompArch.X86_64 or SeccompArch.Aarch64))
        {
            throw new ArgumentException($"{native} is not a native architecture: compile for X86_64 or Aarch64.", nameof(native));
        }

        var rules = Select(profile, native, capabilities, kernel);
        var arches = Architectures(profile, native);
        var asm = new ClassicBpfAssembler();
        var kill = asm.NewLabel();
        var defaultBody = asm.NewLabel();
        var bodies = new Dictionary<string, (int Label, List<SeccompRule> Rules)>(StringComparer.Ordinal);

        // Sections: each architecture's dispatch tree. x32 hangs off x86_64's (same audit arch).
        var sections = new List<(SeccompArch Arch, int Label, List<(uint Lo, uint Hi, int Label)> Ranges)>();
        var x32Label = arches.Contains(SeccompArch.X32) ? asm.NewLabel() : kill;
        foreach (var arch in arches.Where(a => a != SeccompArch.X32).Append(SeccompArch.X32).Where(arches.Contains))
        {
            var label = arch == SeccompArch.X32 ? x32Label : asm.NewLabel();
            var perNumber = new SortedDictionary<uint, int>();
            foreach (var (name, number) in SyscallTable.All(arch))
            {
                var matching = rules.Where(r => r.Names.Contains(name, StringComparer.Ordinal)).ToList();
                if (matching.Count == 0)
                {
                    continue;
                }

                var key = Key(matching);
                if (!bodies.TryGetValue(key, out var body))
                {
                    body = (asm.NewLabel(), matching);
                    bodies.Add(key, body);
                }

                perNumber[(uint)number] = body.Label;
            }

            List<(uint Lo, uint Hi, int Label)> ranges;
            if (arch == SeccompArch.X86_64)
            {
                // Numbers with the x32 bit are x32 syscalls: their own table, or killed when the profile leaves x32 out.
                ranges = Ranges(perNumber, 0, SyscallTable.X32SyscallBit - 1, defaultBody);
                ranges.Add((SyscallTable.X32SyscallBit, uint.MaxValue, x32Label));
            }
            else
            {
                ranges = Ranges(perNumber, arch == SeccompArch.X32 ? SyscallTable.X32SyscallBit : 0, uint.MaxValue, defaultBody);
            }

            sections.Add((arch, label, ranges));
        }

        // 1. Architecture.
        asm.Load(OffsetArch);
        foreach (var (arch, label, _) in sections.Where(s => s.Arch != SeccompArch.X32))
        {
            var next = asm.NewLabel();
            asm.JumpIf(ClassicBpfAssembler.JmpJeqK, AuditArch(arch), label, next);
            asm.Place(next);
        }

        asm.Jump(kill);

        // 2. Number dispatch per architecture. A is reloaded with nr on entry (x32 enters from x86_64's tree with nr already in A).
        foreach (var (arch, label, ranges) in sections)
        {
            asm.Place(label);
            if (arch != SeccompArch.X32)
            {
                asm.Load(OffsetNr);
            }

            Tree(asm, ranges, 0, ranges.Count);
        }

        // 3. Bodies.
        asm.Place(kill);
        asm.Return(RetKillProcess);
        asm.Place(defaultBody);
        asm.Return(Encode(profile.DefaultAction));
        foreach (var (label, matching) in bodies.Values)
        {
            asm.Place(label);
            Body(asm, matching, profile.DefaultAction);
        }

        return new SeccompProgram(asm.Assemble(), Flags(profile.Flags), arches);
    }

    /// <summary>The kernel version as runc compares it: kernel and major revision, nothing after.</summary>
    public static Version RunningKernel()
    {
        var v = Environment.OSVersion.Version;
        return new Version(v.Major, v.Minor);
    }

    /// <summary>The rules that apply to this container (Docker's includes/excludes), with "name" folded into names.</summary>
    internal static List<SeccompRule> Select(SeccompDocument profile, SeccompArch native, IReadOnlySet<string> caps, Version kernel)
    {
        var arch = SyscallTable.NativeName(native);
        var kept = new List<SeccompRule>();
        foreach (var rule in profile.Syscalls)
        {
            if (rule.Excludes is { } ex
                && (ex.Arches.Contains(arch, StringComparer.Ordinal) || ex.Caps.Any(caps.Contains) || (ex.MinKernel is { } exMin && kernel >= exMin)))
            {
                continue;
            }

            if (rule.Includes is { } inc
                && ((inc.Arches.Count > 0 && !inc.Arches.Contains(arch, StringComparer.Ordinal)) || !inc.Caps.All(caps.Contains) || (inc.MinKernel is { } incMin && kernel < incMin)))
            {
                continue;
            }

            kept.Add(rule);
        }

        return kept;
    }

    private static List<SeccompArch> Architectures(SeccompDocument profile, SeccompArch native)
    {
        // architectures (or the archMap entry of the native architecture, with its sub-architectures); the native one
        // is always there, as libseccomp always adds it. Sub-architectures without a table here (arm on aarch64) stay
        // out, so their syscalls are killed.
        var named = new List<string>(profile.Architectures);
        if (profile.ArchMap.FirstOrDefault(a => a.Arch == SyscallTable.ScmpName(native)) is { } map)
        {
            named.Add(map.Arch);
            named.AddRange(map.SubArchitectures);
        }

        var result = new List<SeccompArch> { native };
        if (native == SeccompArch.X86_64)
        {
            foreach (var sub in (SeccompArch[])[SeccompArch.I386, SeccompArch.X32])
            {
                if (named.Contains(SyscallTable.ScmpName(sub)))
                {
                    result.Add(sub);
                }
            }
        }

        return result;
    }

    private static uint AuditArch(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 or SeccompArch.X32 => SyscallTable.AuditArchX86_64,
        SeccompArch.I386 => SyscallTable.AuditArchI386,
        _ => SyscallTable.AuditArchAarch64,
    };

    // Covers [min, max] with ranges of numbers sharing a body; numbers without rules take the default body.
    private static List<(uint Lo, uint Hi, int Label)> Ranges(IReadOnlyDictionary<uint, int> perNumber, uint min, uint max, int defaultLabel)
    {
        var ranges = new List<(uint Lo, uint Hi, int Label)>();
        void Add(uint lo, uint hi, int label)
        {
            if (ranges.Count > 0 && ranges[^1].Label == label && ranges[^1].Hi + 1 == lo)
            {
                ranges[^1] = (ranges[^1].Lo, hi, label);
            }
            else
            {
                ranges.Add((lo, hi, label));
            }
        }

        var next = min;
        foreach (var (number, label) in perNumber.OrderBy(p => p.Key))
        {
            if (number > next)
            {
                Add(next, number - 1, defaultLabel);
            }

            Add(number, number, label);
            next = number + 1;
        }

        if (next <= max && (next != 0 || perNumber.Count == 0))
        {
            Add(next, max, defaultLabel);
        }

        return ranges;
    }

    // A holds nr; ranges[from..to) are sorted and contiguous. Halve on the first number of the middle range.
    private static void Tree(ClassicBpfAssembler asm, List<(uint Lo, uint Hi, int Label)> ranges, int from, int to)
    {
        if (to - from == 1)
        {
            asm.Jump(ranges[from].Label);
            return;
        }

        var mid = (from + to) / 2;
        var right = asm.NewLabel();
        var left = asm.NewLabel();
        asm.JumpIf(ClassicBpfAssembler.JmpJgeK, ranges[mid].Lo, right, left);
        asm.Place(left);
        Tree(asm, ranges, from, mid);
        asm.Place(right);
        Tree(asm, ranges, mid, to);
    }

    private static void Body(ClassicBpfAssembler asm, List<SeccompRule> rules, SeccompAction defaultAction)
    {
        foreach (var rule in rules.Where(r => r.Args.Count > 0))
        {
            var next = asm.NewLabel();
            foreach (var arg in rule.Args)
            {
                var pass = asm.NewLabel();
                Compare(asm, arg, pass, next);
                asm.Place(pass);
            }

            asm.Return(Encode(rule.Action));
            asm.Place(next);
        }

        var unconditional = rules.FirstOrDefault(r => r.Args.Count == 0);
        asm.Return(Encode(unconditional?.Action ?? defaultAction));
    }

    // Jumps to pass when args[i] op value holds, else to fail. The 64-bit value is compared as two 32-bit words
    // (little-endian: the low word first in memory): the high words decide unless they are equal.
    private static void Compare(ClassicBpfAssembler asm, SeccompArgument arg, int pass, int fail)
    {
        var lo = OffsetArgs + (8 * (uint)arg.Index);
        var hi = lo + 4;
        var vLo = (uint)arg.Value;
        var vHi = (uint)(arg.Value >> 32);
        var checkLo = asm.NewLabel();
        switch (arg.Op)
        {
            case SeccompOperator.Equal:
            case SeccompOperator.NotEqual:
                var (eq, ne) = arg.Op == SeccompOperator.Equal ? (pass, fail) : (fail, pass);
                asm.Load(hi);
                asm.JumpIf(ClassicBpfAssembler.JmpJeqK, vHi, checkLo, ne);
                asm.Place(checkLo);
                asm.Load(lo);
                asm.JumpIf(ClassicBpfAssembler.JmpJeqK, vLo, eq, ne);
                break;
            case SeccompOperator.MaskedEqual:
                var want = arg.ValueTwo;
                asm.Load(hi);
                asm.And(vHi);
                asm.JumpIf(ClassicBpfAssembler.JmpJeqK, (uint)(want >> 32), checkLo, fail);
                asm.Place(checkLo);
                asm.Load(lo);
                asm.And(vLo);
                asm.JumpIf(ClassicBpfAssembler.JmpJeqK, (uint)want, pass, fail);
                break;
            case SeccompOperator.GreaterThan:
            case SeccompOperator.GreaterOrEqual:
            {
                // hi > vHi: pass; hi == vHi: decide on lo; else fail.
                var hiEqual = asm.NewLabel();
                asm.Load(hi);
                asm.JumpIf(ClassicBpfAssembler.JmpJgtK, vHi, pass, hiEqual);
                asm.Place(hiEqual);
                asm.JumpIf(ClassicBpfAssembler.JmpJeqK, vHi, checkLo, fail);
                asm.Place(checkLo);
                asm.Load(lo);
                asm.JumpIf(arg.Op == SeccompOperator.GreaterThan ? ClassicBpfAssembler.JmpJgtK : ClassicBpfAssembler.JmpJgeK, vLo, pass, fail);
                break;
            }

            case SeccompOperator.LessThan:
            case SeccompOperator.LessOrEqual:
            {
                // hi > vHi: fail; hi == vHi: decide on lo; else (hi < vHi) pass. "lo < v" is "not lo >= v".
                var hiEqual = asm.NewLabel();
                asm.Load(hi);
                asm.JumpIf(ClassicBpfAssembler.JmpJgtK, vHi, fail, hiEqual);
                asm.Place(hiEqual);
                asm.JumpIf(ClassicBpfAssembler.JmpJeqK, vHi, checkLo, pass);
                asm.Place(checkLo);
                asm.Load(lo);
                asm.JumpIf(arg.Op == SeccompOperator.LessThan ? ClassicBpfAssembler.JmpJgeK : ClassicBpfAssembler.JmpJgtK, vLo, fail, pass);
                break;
            }
        }
    }

    /// <summary>The SECCOMP_RET_* value of an action.</summary>
    public static uint Encode(SeccompAction action) => action.Kind switch
    {
        SeccompActionKind.Allow => RetAllow,
        SeccompActionKind.Errno => RetErrno | (action.Data & RetDataMask),
        SeccompActionKind.Trace => RetTrace | (action.Data & RetDataMask),
        SeccompActionKind.Log => RetLog,
        SeccompActionKind.Trap => RetTrap,
        SeccompActionKind.KillThread => RetKillThread,
        _ => RetKillProcess,
    };

    private static uint Flags(IReadOnlyList<string> flags)
    {
        uint value = 0;
        foreach (var flag in flags)
        {
            value |= flag switch
            {
                "SECCOMP_FILTER_FLAG_TSYNC" => 1u,
                "SECCOMP_FILTER_FLAG_LOG" => 2u,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => 4u,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => 32u,
                _ => 0u,
            };
        }

        return value;
    }

    // Two syscalls share a body when their rule lists compile to the same code.
    private static string Key(List<SeccompRule> rules)
    {
        var sb = new StringBuilder();
        foreach (var r in rules.Where(r => r.Args.Count > 0).Append(rules.FirstOrDefault(r => r.Args.Count == 0)))
        {
            if (r is null)
            {
                sb.Append("|-");
                continue;
            }

            sb.Append('|').Append(Encode(r.Action).ToString(CultureInfo.InvariantCulture));
            foreach (var a in r.Args)
            {
                sb.Append(CultureInfo.InvariantCulture, $":{a.Index},{a.Op},{a.Value},{a.ValueTwo}");
            }
        }

        return sb.ToString();
    }
}
