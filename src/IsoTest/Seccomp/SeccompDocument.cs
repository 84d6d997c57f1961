using System.Globalization;
using System.Text.Json;

namespace IsoTest.Seccomp;

/// <summary>What a rule or the default does to a matching syscall (Docker's <c>SCMP_ACT_*</c>).</summary>
internal enum SeccompActionKind
{
    KillThread,
    KillProcess,
    Trap,
    Errno,
    Trace,
    Log,
    Allow,
}

/// <summary>How an argument is compared (Docker's <c>SCMP_CMP_*</c>).</summary>
internal enum SeccompOperator
{
    NotEqual,
    LessThan,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    GreaterThan,
    MaskedEqual,
}

/// <summary>An action and the number it carries (the errno of ERRNO, the message of TRACE).</summary>
internal readonly record struct SeccompAction(SeccompActionKind Kind, uint Data = 0)
{
    public override string ToString() => Kind is SeccompActionKind.Errno or SeccompActionKind.Trace
        ? string.Create(CultureInfo.InvariantCulture, $"{Kind}({Data})")
        : Kind.ToString();
}

/// <summary>One argument condition: <c>args[Index] Op Value</c> (MaskedEqual: <c>(args[Index] &amp; Value) == ValueTwo</c>).</summary>
internal sealed record SeccompArgument(int Index, ulong Value, ulong ValueTwo, SeccompOperator Op);

/// <summary>
/// A condition on the container or host under which a rule is kept (includes) or dropped (excludes): Docker's
/// capabilities (the bounding set), architectures (libseccomp's names: amd64, x86, x32, arm64, arm, ...) and
/// minimum kernel version.
/// </summary>
internal sealed record SeccompCondition(IReadOnlyList<string> Caps, IReadOnlyList<string> Arches, Version? MinKernel);

/// <summary>One entry of <c>syscalls</c>: the names it covers, its action, and its argument conditions (all must hold).</summary>
internal sealed record SeccompRule(
    IReadOnlyList<string> Names,
    SeccompAction Action,
    IReadOnlyList<SeccompArgument> Args,
    SeccompCondition? Includes,
    SeccompCondition? Excludes);

/// <summary>An architecture and the sub-architectures a profile covers with it (Docker's <c>archMap</c>).</summary>
internal sealed record SeccompArchitecture(string Arch, IReadOnlyList<string> SubArchitectures);

/// <summary>
/// A seccomp profile in Docker's JSON format (moby profiles/seccomp), parsed and checked. Unknown fields are ignored
/// as Docker ignores them; everything this engine cannot honour (SCMP_ACT_NOTIFY, an unknown action, operator or
/// architecture, a malformed kernel version) is an error naming the JSON path and the fix.
/// </summary>
internal sealed record SeccompDocument(
    SeccompAction DefaultAction,
    IReadOnlyList<string> Architectures,
    IReadOnlyList<SeccompArchitecture> ArchMap,
    IReadOnlyList<SeccompRule> Syscalls,
    IReadOnlyList<string> Flags)
{
    /// <summary>EPERM: what ERRNO and TRACE carry when the profile names no number (runc's choice).</summary>
    public const uint DefaultErrno = 1;

    /// <summary>The architectures libseccomp names in profiles, by their SCMP_ARCH_ names.</summary>
    public static readonly IReadOnlyList<string> KnownArchitectures =
    [
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
    ];

    private static readonly string[] KnownFlags =
        ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"];

    /// <summary>Parses <paramref name="json"/>; every problem found is added to <paramref name="errors"/> (prefixed with <paramref name="where"/>).</summary>
    /// <returns>The document, or null when there were errors.</returns>
    public static SeccompDocument? Parse(string json, string where, List<string> errors)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException ex)
        {
            errors.Add($"{where}: the seccomp profile is not valid JSON ({ex.Message}). Give a Docker seccomp profile (a JSON object with defaultAction and syscalls).");
            return null;
        }

        using (doc)
        {
            var before = errors.Count;
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{where}: a seccomp profile is a JSON object, not {root.ValueKind}.");
                return null;
            }

            var p = new Parser(where, errors);
            var defaultErrno = p.OptionalUInt(root, "defaultErrnoRet", "defaultErrnoRet");
            SeccompAction defaultAction = default;
            if (!root.TryGetProperty("defaultAction", out var da) || da.ValueKind == JsonValueKind.Null || (da.ValueKind == JsonValueKind.String && da.GetString() == ""))
            {
                errors.Add($"{where}: defaultAction is missing: set it, e.g. \"defaultAction\": \"SCMP_ACT_ERRNO\" (deny what the profile does not allow), or use the profile \"unconfined\" for no filter.");
            }
            else
            {
                defaultAction = p.Action(da, defaultErrno, "defaultAction");
            }

            var arches = p.Strings(root, "architectures", "architectures");
            foreach (var (arch, i) in arches.Select((a, i) => (a, i)))
            {
                p.CheckArch(arch, $"architectures[{i}]");
            }

            var archMap = new List<SeccompArchitecture>();
            if (root.TryGetProperty("archMap", out var am) && am.ValueKind != JsonValueKind.Null)
            {
                if (am.ValueKind != JsonValueKind.Array)
                {
                    errors.Add($"{where}: archMap must be an array of {{\"architecture\", \"subArchitectures\"}}.");
                }
                else
                {
                    var i = 0;
                    foreach (var entry in am.EnumerateArray())
                    {
                        var path = $"archMap[{i++}]";
                        if (entry.ValueKind != JsonValueKind.Object)
                        {
                            errors.Add($"{where}: {path} must be an object with architecture and subArchitectures.");
                            continue;
                        }

                        var arch = p.String(entry, "architecture", path + ".architecture") ?? "";
                        p.CheckArch(arch, path + ".architecture");
                        var subs = p.Strings(entry, "subArchitectures", path + ".subArchitectures");
                        foreach (var (sub, j) in subs.Select((a, j) => (a, j)))
                        {
                            p.CheckArch(sub, $"{path}.subArchitectures[{j}]");
                        }

                        archMap.Add(new SeccompArchitecture(arch, subs));
                    }
                }
            }

            if (arches.Count > 0 && archMap.Count > 0)
            {
                errors.Add($"{where}: both architectures and archMap are given: use one of them (Docker refuses both).");
            }

            var flags = p.Strings(root, "flags", "flags");
            foreach (var (flag, i) in flags.Select((f, i) => (f, i)))
            {
                if (!KnownFlags.Contains(flag, StringComparer.Ordinal))
                {
                    errors.Add($"{where}: flags[{i}]: unknown flag '{flag}'; use {string.Join(", ", KnownFlags)}.");
                }
            }

            if (root.TryGetProperty("listenerPath", out var lp) && lp.ValueKind == JsonValueKind.String && lp.GetString() is { Length: > 0 })
            {
                errors.Add($"{where}: listenerPath: seccomp user notification (a seccomp agent) is not supported by the engine; remove listenerPath and SCMP_ACT_NOTIFY rules, or use the Docker backend.");
            }

            var rules = new List<SeccompRule>();
            if (root.TryGetProperty("syscalls", out var sc) && sc.ValueKind != JsonValueKind.Null)
            {
                if (sc.ValueKind != JsonValueKind.Array)
                {
                    errors.Add($"{where}: syscalls must be an array of rules.");
                }
                else
                {
                    var i = 0;
                    foreach (var entry in sc.EnumerateArray())
                    {
                        if (p.Rule(entry, $"syscalls[{i++}]") is { } rule)
                        {
                            rules.Add(rule);
                        }
                    }
                }
            }

            return errors.Count > before ? null : new SeccompDocument(defaultAction, arches, archMap, rules, flags);
        }
    }

    private sealed class Parser(string where, List<string> errors)
    {
        public void Error(string path, string message) => errors.Add($"{where}: {path}: {message}");

        public string? String(JsonElement obj, string name, string path)
        {
            if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            if (v.ValueKind != JsonValueKind.String)
            {
                Error(path, $"must be a string, not {v.ValueKind}.");
                return null;
            }

            return v.GetString();
        }

        public List<string> Strings(JsonElement obj, string name, string path)
        {
            var list = new List<string>();
            if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                return list;
            }

            if (v.ValueKind != JsonValueKind.Array)
            {
                Error(path, "must be an array of strings.");
                return list;
            }

            var i = 0;
            foreach (var item in v.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String)
                {
                    Error($"{path}[{i}]", $"must be a string, not {item.ValueKind}.");
                }
                else
                {
                    list.Add(item.GetString()!);
                }

                i++;
            }

            return list;
        }

        public uint? OptionalUInt(JsonElement obj, string name, string path)
        {
            if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            // The kernel keeps 16 bits of SECCOMP_RET_DATA; errnos above 4095 are not errnos.
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetUInt32(out var n) || n > 0xFFFF)
            {
                Error(path, "must be a number from 0 to 65535 (an errno such as 1 for EPERM or 38 for ENOSYS).");
                return null;
            }

            return n;
        }

        public ulong ULong(JsonElement obj, string name, string path)
        {
            if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                return 0;
            }

            if (v.ValueKind != JsonValueKind.Number || !v.TryGetUInt64(out var n))
            {
                Error(path, "must be a number from 0 to 18446744073709551615.");
                return 0;
            }

            return n;
        }

        public void CheckArch(string arch, string path)
        {
            if (!KnownArchitectures.Contains(arch, StringComparer.Ordinal))
            {
                Error(path, $"unknown architecture '{arch}'; use SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, SCMP_ARCH_X86, SCMP_ARCH_X32, SCMP_ARCH_ARM, ...");
            }
        }

        public SeccompAction Action(JsonElement v, uint? errnoRet, string path)
        {
            if (v.ValueKind != JsonValueKind.String)
            {
                Error(path, "must be a string such as \"SCMP_ACT_ALLOW\".");
                return default;
            }

            var name = v.GetString();
            switch (name)
            {
                case "SCMP_ACT_ALLOW":
                    return new(SeccompActionKind.Allow);
                case "SCMP_ACT_ERRNO":
                    return new(SeccompActionKind.Errno, errnoRet ?? DefaultErrno);
                case "SCMP_ACT_TRACE":
                    return new(SeccompActionKind.Trace, errnoRet ?? DefaultErrno);
                case "SCMP_ACT_LOG":
                    return new(SeccompActionKind.Log);
                case "SCMP_ACT_TRAP":
                    return new(SeccompActionKind.Trap);
                case "SCMP_ACT_KILL" or "SCMP_ACT_KILL_THREAD":
                    return new(SeccompActionKind.KillThread);
                case "SCMP_ACT_KILL_PROCESS":
                    return new(SeccompActionKind.KillProcess);
                case "SCMP_ACT_NOTIFY":
                    Error(path, "SCMP_ACT_NOTIFY needs a seccomp agent, which the engine does not have: use SCMP_ACT_ERRNO or SCMP_ACT_LOG, or the Docker backend.");
                    return default;
                default:
                    Error(path, $"unknown action '{name}'; use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG.");
                    return default;
            }
        }

        public SeccompRule? Rule(JsonElement entry, string path)
        {
            if (entry.ValueKind != JsonValueKind.Object)
            {
                Error(path, "must be an object with names and action.");
                return null;
            }

            var before = errors.Count;
            var names = Strings(entry, "names", path + ".names");
            if (String(entry, "name", path + ".name") is { Length: > 0 } single)
            {
                if (names.Count > 0)
                {
                    Error(path, "both name and names are given: use names (Docker refuses both).");
                }

                names.Add(single);
            }

            if (names.Count == 0)
            {
                Error(path + ".names", "no syscall named: list at least one, e.g. \"names\": [\"mount\"].");
            }

            // defaultErrnoRet applies to defaultAction only: a rule without errnoRet returns EPERM (as runc does).
            var errnoRet = OptionalUInt(entry, "errnoRet", path + ".errnoRet");
            SeccompAction action = default;
            if (!entry.TryGetProperty("action", out var a) || a.ValueKind == JsonValueKind.Null)
            {
                Error(path + ".action", "missing: give an action such as \"SCMP_ACT_ALLOW\".");
            }
            else
            {
                action = Action(a, errnoRet, path + ".action");
            }

            var args = new List<SeccompArgument>();
            if (entry.TryGetProperty("args", out var av) && av.ValueKind != JsonValueKind.Null)
            {
                if (av.ValueKind != JsonValueKind.Array)
                {
                    Error(path + ".args", "must be an array of {index, value, valueTwo, op}.");
                }
                else
                {
                    var i = 0;
                    foreach (var arg in av.EnumerateArray())
                    {
                        var argPath = $"{path}.args[{i++}]";
                        if (arg.ValueKind != JsonValueKind.Object)
                        {
                            Error(argPath, "must be an object with index, value, valueTwo and op.");
                            continue;
                        }

                        var index = ULong(arg, "index", argPath + ".index");
                        if (index > 5)
                        {
                            Error(argPath + ".index", $"{index} is out of range: a syscall has arguments 0 to 5.");
                        }

                        var op = String(arg, "op", argPath + ".op") switch
                        {
                            "SCMP_CMP_NE" => SeccompOperator.NotEqual,
                            "SCMP_CMP_LT" => SeccompOperator.LessThan,
                            "SCMP_CMP_LE" => SeccompOperator.LessOrEqual,
                            "SCMP_CMP_EQ" => SeccompOperator.Equal,
                            "SCMP_CMP_GE" => SeccompOperator.GreaterOrEqual,
                            "SCMP_CMP_GT" => SeccompOperator.GreaterThan,
                            "SCMP_CMP_MASKED_EQ" => SeccompOperator.MaskedEqual,
                            var other => Bad(argPath + ".op", other),
                        };
                        args.Add(new SeccompArgument((int)Math.Min(index, 5), ULong(arg, "value", argPath + ".value"), ULong(arg, "valueTwo", argPath + ".valueTwo"), op));
                    }
                }
            }

            var includes = Condition(entry, "includes", path + ".includes");
            var excludes = Condition(entry, "excludes", path + ".excludes");
            return errors.Count > before ? null : new SeccompRule(names, action, args, includes, excludes);
        }

        private SeccompOperator Bad(string path, string? op)
        {
            Error(path, $"unknown operator '{op}'; use SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_GE, SCMP_CMP_GT or SCMP_CMP_MASKED_EQ.");
            return SeccompOperator.Equal;
        }

        private SeccompCondition? Condition(JsonElement entry, string name, string path)
        {
            if (!entry.TryGetProperty(name, out var c) || c.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            if (c.ValueKind != JsonValueKind.Object)
            {
                Error(path, "must be an object with caps, arches and/or minKernel.");
                return null;
            }

            Version? minKernel = null;
            if (String(c, "minKernel", path + ".minKernel") is { Length: > 0 } text)
            {
                var parts = text.Split('.');
                if (parts.Length != 2 || !byte.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
                    || !byte.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor) || (major == 0 && minor == 0))
                {
                    Error(path + ".minKernel", $"'{text}' is not a kernel version: write \"<kernel>.<major>\", e.g. \"4.8\".");
                }
                else
                {
                    minKernel = new Version(major, minor);
                }
            }

            return new SeccompCondition(Strings(c, "caps", path + ".caps"), Strings(c, "arches", path + ".arches"), minKernel);
        }
    }
}
