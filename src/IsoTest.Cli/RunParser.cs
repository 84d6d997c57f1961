using System.Globalization;
using System.Text.RegularExpressions;

namespace IsoTest.Cli;

/// <summary>What <c>isotest run</c> was asked to do.</summary>
/// <param name="Spec">The container to run.</param>
/// <param name="Remove">Whether <c>--rm</c> was given. With no daemon a container never outlives the command, so it is always removed; the flag is accepted for Docker compatibility.</param>
internal sealed record RunRequest(ContainerSpec Spec, bool Remove);

/// <summary>
/// Parses <c>isotest run [OPTIONS] ROOTFS [COMMAND] [ARG...]</c> with Docker's flag names, forms and
/// meanings (Docker's CLI uses spf13/pflag with interspersed flags off):
/// <list type="bullet">
/// <item>options stop at the first positional argument (ROOTFS) or at <c>--</c>; everything after ROOTFS is the command;</item>
/// <item>long flags as <c>--memory 64m</c> or <c>--memory=64m</c>; a value flag takes the next argument even when it starts with <c>-</c>;</item>
/// <item>short flags as <c>-m 64m</c>, <c>-m64m</c> or <c>-m=64m</c>;</item>
/// <item>boolean flags as <c>--rm</c> or <c>--rm=false</c>;</item>
/// <item><c>-h</c> is <c>--hostname</c> (as in <c>docker run</c>); only <c>--help</c> asks for help.</item>
/// </list>
/// Every mistake is a <see cref="UsageException"/> naming the flag and the fix.
/// </summary>
internal static partial class RunParser
{
    public const string HelpHint = "See 'isotest run --help'.";

    /// <summary>Docker refuses memory limits below 6 MiB: the runtime itself needs about that much.</summary>
    public const long MinimumMemoryBytes = 6L << 20;

    private static readonly Flag[] Flags =
    [
        new("rm", null, FlagKind.Bool, (s, v) => s.Remove = ParseBool(v)),
        new("name", null, FlagKind.Value, (s, v) => s.Name = ParseName(v)),
        new("memory", 'm', FlagKind.Value, (s, v) => s.MemoryBytes = ParseMemory(v)),
        new("cpus", null, FlagKind.Value, (s, v) => s.Cpus = ParseCpus(v)),
        new("pids-limit", null, FlagKind.Value, (s, v) => s.Pids = ParsePidsLimit(v)),
        new("cpuset-cpus", null, FlagKind.Value, (s, v) => s.CpusetCpus = ParseCpuset(v)),
        new("env", 'e', FlagKind.Value, (s, v) => AddEnvironment(s, v)),
        new("workdir", 'w', FlagKind.Value, (s, v) => s.WorkingDirectory = ParseWorkingDirectory(v)),
        new("user", 'u', FlagKind.Value, (s, v) => s.User = ParseUser(v)),
        new("hostname", 'h', FlagKind.Value, (s, v) => s.Hostname = ParseHostname(v)),
        new("volume", 'v', FlagKind.Value, (s, v) => s.Mounts.Add(ParseVolume(v))),
        new("tmpfs", null, FlagKind.Value, (s, v) => s.Mounts.Add(ParseTmpfs(v))),
        new("read-only", null, FlagKind.Bool, (s, v) => s.ReadOnly = ParseBool(v)),
        new("network", null, FlagKind.Value, (s, v) => s.Network = ParseNetwork(v)),
        new("net", null, FlagKind.Value, (s, v) => s.Network = ParseNetwork(v)), // Docker's older, hidden alias
        new("stop-timeout", null, FlagKind.Value, (s, v) => s.StopTimeout = ParseStopTimeout(v)),
    ];

    /// <summary>Docker flags people type by habit that isotest cannot honour yet: a clear refusal beats "unknown flag".</summary>
    private static readonly (string Long, char? Short, string Why)[] Unsupported =
    [
        ("interactive", 'i', "stdin is not forwarded to the container yet; pipe input through a file with -v instead"),
        ("tty", 't', "isotest does not allocate terminals yet; the container's output is streamed line by line"),
        ("detach", 'd', "isotest has no daemon yet, so a container lives only as long as the command; run it in the foreground"),
        ("publish", 'p', "ports are not published by the command line yet; use --network host to share the host's ports"),
    ];

    /// <summary>
    /// Parses the arguments that follow <c>run</c>. Returns null when help was asked for (<c>--help</c>).
    /// </summary>
    /// <param name="args">The arguments after <c>run</c>.</param>
    /// <param name="getEnvironmentVariable">Reads the caller's environment, for <c>-e KEY</c> without a value (Docker copies it).</param>
    /// <exception cref="UsageException">The arguments are wrong; the message names the flag or argument.</exception>
    public static RunRequest? Parse(IReadOnlyList<string> args, Func<string, string?>? getEnvironmentVariable = null)
    {
        var state = new State(getEnvironmentVariable ?? Environment.GetEnvironmentVariable);
        var i = 0;
        for (; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                i++;
                break;
            }

            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                if (!ParseLong(args, ref i, state))
                {
                    return null;
                }
            }
            else if (arg.Length > 1 && arg[0] == '-')
            {
                ParseShort(args, ref i, state);
            }
            else
            {
                break; // the first positional (ROOTFS) ends the options, as in docker run
            }
        }

        if (i >= args.Count)
        {
            throw new UsageException("\"isotest run\" requires at least 1 argument: ROOTFS (host or a directory), then the command.\nUsage:  isotest run [OPTIONS] ROOTFS COMMAND [ARG...]");
        }

        var rootFs = ParseRootFileSystem(args[i]);
        var command = args.Skip(i + 1).ToArray();
        if (command.Length == 0)
        {
            throw new UsageException($"no command given: isotest runs no images with a default command, so put the command after ROOTFS, e.g. isotest run {args[i]} /bin/sh -c 'echo hi'");
        }

        return new RunRequest(state.ToSpec(rootFs, command), state.Remove);
    }

    private static bool ParseLong(IReadOnlyList<string> args, ref int i, State state)
    {
        var body = args[i][2..];
        string? inline = null;
        var eq = body.IndexOf('=', StringComparison.Ordinal);
        if (eq >= 0)
        {
            inline = body[(eq + 1)..];
            body = body[..eq];
        }

        if (body == "help")
        {
            return false;
        }

        var flag = Array.Find(Flags, f => f.Long == body);
        if (flag is null)
        {
            ThrowIfUnsupported(u => u.Long == body, "--" + body);
            throw new UsageException($"unknown flag: --{body}");
        }

        string value;
        if (flag.Kind == FlagKind.Bool)
        {
            value = inline ?? "true";
        }
        else if (inline is not null)
        {
            value = inline;
        }
        else if (i + 1 < args.Count)
        {
            value = args[++i];
        }
        else
        {
            throw new UsageException($"flag needs an argument: --{body}");
        }

        Apply(flag, state, value);
        return true;
    }

    private static void ParseShort(IReadOnlyList<string> args, ref int i, State state)
    {
        var arg = args[i];
        for (var j = 1; j < arg.Length; j++)
        {
            var c = arg[j];
            var flag = Array.Find(Flags, f => f.Short == c);
            if (flag is null)
            {
                ThrowIfUnsupported(u => u.Short == c, "-" + c);
                throw new UsageException($"unknown shorthand flag: '{c}' in {arg}");
            }

            if (flag.Kind == FlagKind.Bool)
            {
                Apply(flag, state, "true");
                continue;
            }

            // -m64m, -m=64m (pflag drops one '=' right after the letter), or -m 64m.
            var rest = arg[(j + 1)..];
            if (rest.StartsWith('='))
            {
                rest = rest[1..];
            }
            else if (rest.Length == 0)
            {
                if (i + 1 >= args.Count)
                {
                    throw new UsageException($"flag needs an argument: '{c}' in -{c}");
                }

                rest = args[++i];
            }

            Apply(flag, state, rest);
            return;
        }
    }

    private static void ThrowIfUnsupported(Predicate<(string Long, char? Short, string Why)> match, string given)
    {
        var hit = Array.FindIndex(Unsupported, match);
        if (hit >= 0)
        {
            var u = Unsupported[hit];
            throw new UsageException($"flag {given} (--{u.Long}) is not supported: {u.Why}");
        }
    }

    private static void Apply(Flag flag, State state, string value)
    {
        try
        {
            flag.Apply(state, value);
        }
        catch (FormatException e)
        {
            throw new UsageException($"invalid argument \"{value}\" for \"{flag.Display}\" flag: {e.Message}");
        }
    }

    private static RootFileSystem ParseRootFileSystem(string value)
    {
        if (value == "host")
        {
            return RootFileSystem.Host;
        }

        var path = Path.GetFullPath(value);
        if (!Directory.Exists(path))
        {
            throw new UsageException($"root filesystem '{value}' is neither 'host' nor an existing directory: give host, or the path of a directory that holds a root filesystem (use ./host for a directory named host)");
        }

        return RootFileSystem.FromDirectory(path);
    }

    private static bool ParseBool(string value) => value.ToLowerInvariant() switch
    {
        "true" or "1" or "t" => true,
        "false" or "0" or "f" => false,
        _ => throw new FormatException("expected true or false"),
    };

    private static string ParseName(string value) =>
        NamePattern().IsMatch(value)
            ? value
            : throw new FormatException("a name is at least 2 characters from [a-zA-Z0-9_.-] and starts with a letter or digit");

    private static long? ParseMemory(string value)
    {
        if (!ByteSize.TryParse(value, out var bytes, out var error))
        {
            throw new FormatException(error);
        }

        if (bytes == 0)
        {
            return null; // Docker: 0 means no limit
        }

        return bytes >= MinimumMemoryBytes
            ? bytes
            : throw new FormatException("the minimum memory limit is 6m (6 MiB), as in Docker: the container's own processes need about that much");
    }

    private static double ParseCpus(string value)
    {
        if (!double.TryParse(value, NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var cpus)
            || double.IsNaN(cpus) || double.IsInfinity(cpus))
        {
            throw new FormatException("not a number of CPUs: use a decimal such as 0.5 or 2");
        }

        var available = Environment.ProcessorCount;
        if (cpus < 0.01 || cpus > available)
        {
            throw new FormatException($"the range of CPUs is from 0.01 to {available.ToString("0.00", CultureInfo.InvariantCulture)}, as there are only {available} CPUs available");
        }

        return cpus;
    }

    private static long? ParsePidsLimit(string value)
    {
        if (!long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var pids))
        {
            throw new FormatException("not a whole number: give the maximum number of processes, or -1 for no limit");
        }

        return pids switch
        {
            -1 or 0 => null, // Docker: 0 and -1 both mean no limit
            < -1 => throw new FormatException("a pids limit is a positive number of processes, or -1 for no limit"),
            _ => pids,
        };
    }

    private static string ParseCpuset(string value)
    {
        var online = OnlineCpus();
        foreach (var part in value.Split(','))
        {
            var range = part.Split('-');
            if (range.Length is < 1 or > 2
                || !int.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                || !int.TryParse(range[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var last)
                || last < first)
            {
                throw new FormatException("not a CPU list: use numbers and ranges such as 0, 0-1 or 0,2");
            }

            if (online is not null && Enumerable.Range(first, last - first + 1).Any(cpu => !online.Contains(cpu)))
            {
                throw new FormatException($"requested CPUs are not available: this machine has CPUs {FormatCpus(online)}");
            }
        }

        return value;
    }

    private static void AddEnvironment(State state, string value)
    {
        var eq = value.IndexOf('=', StringComparison.Ordinal);
        var key = eq < 0 ? value : value[..eq];
        if (key.Length == 0 || key.Any(char.IsWhiteSpace))
        {
            throw new FormatException("an environment variable is KEY=VALUE, or KEY alone to copy it from the current environment");
        }

        if (eq >= 0)
        {
            state.Environment[key] = value[(eq + 1)..];
        }
        else if (state.GetEnvironmentVariable(key) is { } inherited)
        {
            state.Environment[key] = inherited;
        }

        // -e KEY with KEY unset here: Docker leaves it unset in the container too.
    }

    private static string ParseWorkingDirectory(string value) =>
        value.StartsWith('/')
            ? value
            : throw new FormatException("the working directory needs to be an absolute path inside the container, e.g. /app");

    private static string ParseUser(string value) =>
        value.Length > 0 && !value.Any(char.IsWhiteSpace)
            ? value
            : throw new FormatException("a user is a name, uid, name:group or uid:gid");

    private static string ParseHostname(string value) =>
        HostnamePattern().IsMatch(value)
            ? value
            : throw new FormatException("a hostname is 1 to 64 characters from [a-zA-Z0-9.-] (the kernel allows 64)");

    private static MountSpec ParseVolume(string value)
    {
        var parts = value.Split(':');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0))
        {
            throw new FormatException("a volume is HOST-PATH:CONTAINER-PATH[:ro|rw]");
        }

        var (source, target) = (parts[0], parts[1]);
        if (!source.StartsWith('/') && !source.StartsWith('.'))
        {
            throw new FormatException($"named volumes are not supported: '{source}' is not a host path; give an absolute path (or one starting with ./)");
        }

        source = Path.GetFullPath(source);
        if (!Path.Exists(source))
        {
            throw new FormatException($"host path '{source}' does not exist: create it first (isotest does not create host directories)");
        }

        if (!target.StartsWith('/'))
        {
            throw new FormatException($"mount path '{target}' must be absolute, e.g. /data");
        }

        var readOnly = false;
        if (parts.Length == 3)
        {
            foreach (var option in parts[2].Split(','))
            {
                readOnly = option switch
                {
                    "ro" => true,
                    "rw" => false,
                    _ => throw new FormatException($"volume option '{option}' is not supported: use ro or rw"),
                };
            }
        }

        return new MountSpec(MountKind.Bind, source, target, readOnly);
    }

    private static MountSpec ParseTmpfs(string value)
    {
        var colon = value.IndexOf(':', StringComparison.Ordinal);
        var target = colon < 0 ? value : value[..colon];
        if (!target.StartsWith('/'))
        {
            throw new FormatException($"mount path '{target}' must be absolute, e.g. /run");
        }

        var readOnly = false;
        long? size = null;
        if (colon >= 0)
        {
            foreach (var option in value[(colon + 1)..].Split(','))
            {
                if (option == "ro" || option == "rw")
                {
                    readOnly = option == "ro";
                }
                else if (option.StartsWith("size=", StringComparison.Ordinal))
                {
                    size = ByteSize.TryParse(option[5..], out var bytes, out var error) && bytes > 0
                        ? bytes
                        : throw new FormatException($"tmpfs size: {error ?? "must be above 0"}");
                }
                else
                {
                    throw new FormatException($"tmpfs option '{option}' is not supported: use ro, rw or size=N (e.g. size=64m)");
                }
            }
        }

        return new MountSpec(MountKind.Tmpfs, null, target, readOnly, size);
    }

    private static Network ParseNetwork(string value) => value switch
    {
        "host" => Network.Host,
        "none" or "private" => Network.Private, // Docker's "none" is exactly our default: only loopback
        "bridge" or "default" => throw new FormatException("isotest has no bridge network: use the default private network (loopback only, same as none) or host"),
        _ => throw new FormatException("unknown network: use host (the host's network) or none (a private network with only loopback, the default)"),
    };

    private static TimeSpan ParseStopTimeout(string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? TimeSpan.FromSeconds(seconds)
            : throw new FormatException("a timeout is a whole number of seconds, 0 or more");

    /// <summary>The CPUs the kernel has online, or null when that cannot be read (then nothing is checked).</summary>
    private static HashSet<int>? OnlineCpus()
    {
        string text;
        try
        {
            text = File.ReadAllText("/sys/devices/system/cpu/online").Trim();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        var cpus = new HashSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var range = part.Split('-');
            var first = int.Parse(range[0], CultureInfo.InvariantCulture);
            var last = int.Parse(range[^1], CultureInfo.InvariantCulture);
            for (var cpu = first; cpu <= last; cpu++)
            {
                cpus.Add(cpu);
            }
        }

        return cpus;
    }

    private static string FormatCpus(HashSet<int> cpus) =>
        cpus.Count == 0 ? "none" : $"{cpus.Min()}-{cpus.Max()}";

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,63})$")]
    private static partial Regex HostnamePattern();

    private enum FlagKind
    {
        Bool,
        Value,
    }

    private sealed record Flag(string Long, char? Short, FlagKind Kind, Action<State, string> Apply)
    {
        /// <summary>How Docker names a flag in errors: <c>-m, --memory</c> or <c>--cpus</c>.</summary>
        public string Display => Short is { } s ? $"-{s}, --{Long}" : $"--{Long}";
    }

    /// <summary>What the flags said so far; turned into a spec once the positionals are known.</summary>
    private sealed class State(Func<string, string?> getEnvironmentVariable)
    {
        public Func<string, string?> GetEnvironmentVariable { get; } = getEnvironmentVariable;

        public bool Remove { get; set; }

        public string? Name { get; set; }

        public long? MemoryBytes { get; set; }

        public double? Cpus { get; set; }

        public long? Pids { get; set; }

        public string? CpusetCpus { get; set; }

        public Dictionary<string, string> Environment { get; } = new(StringComparer.Ordinal);

        public string? WorkingDirectory { get; set; }

        public string? User { get; set; }

        public string? Hostname { get; set; }

        public List<MountSpec> Mounts { get; } = [];

        public bool ReadOnly { get; set; }

        public Network Network { get; set; } = Network.Private;

        /// <summary>Docker's default, too: SIGTERM, then SIGKILL after 10 s.</summary>
        public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(10);

        public ContainerSpec ToSpec(RootFileSystem rootFs, IReadOnlyList<string> command)
        {
            return new ContainerSpec
            {
                RootFileSystem = rootFs,
                Command = command,
                Environment = Environment,
                WorkingDirectory = WorkingDirectory,
                User = User,
                Hostname = Hostname,
                Name = Name,
                Limits = new ResourceLimits(MemoryBytes, Cpus, Pids, CpusetCpus),
                Mounts = Mounts,
                ReadOnlyRootFileSystem = ReadOnly,
                Network = Network,
                StopTimeout = StopTimeout,
            };
        }
    }
}
