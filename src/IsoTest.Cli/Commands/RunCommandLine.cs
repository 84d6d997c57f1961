using System.CommandLine;
using System.Globalization;
using IsoTest.Cli.CommandLine;

namespace IsoTest.Cli.Commands;

/// <summary>What <c>isotest run</c> was asked to do.</summary>
/// <param name="Spec">The container to run.</param>
/// <param name="Remove">Whether <c>--rm</c> was given. With no daemon a container never outlives the command, so it is always removed; the flag is accepted for Docker compatibility.</param>
internal sealed record RunRequest(ContainerSpec Spec, bool Remove);

/// <summary>
/// <c>isotest run [OPTIONS] ROOTFS COMMAND [ARG...]</c>: Docker's flag names, forms and meanings. This
/// class turns each flag's text into a value (Docker's syntax: <c>64m</c>, <c>-1</c> for unlimited,
/// <c>/a:/b:ro</c>); whether the resulting container is valid is <see cref="ContainerSpecValidator"/>'s call.
/// </summary>
internal sealed class RunCommandLine
{
    private readonly Option<bool> _rm = DockerFlags.Bool("rm", "Automatically remove the container when it exits (always the case for now: there is no daemon, so a container never outlives the command)");
    private readonly Option<string?> _name = DockerFlags.Value<string?>("name", null, "string", "Assign a name to the container", v => v);
    private readonly Option<long> _memory = DockerFlags.Value("memory", 'm', "bytes", "Memory limit (e.g. 64m; minimum 6m); swap is off, so above it the OOM killer acts", ParseMemory);
    private readonly Option<double?> _cpus = DockerFlags.Value<double?>("cpus", null, "decimal", "Number of CPUs (0.5 = half of one core)", v => ParseCpus(v));
    private readonly Option<long> _pids = DockerFlags.Value("pids-limit", null, "int", "Tune container pids limit (set -1 for unlimited)", ParsePidsLimit);
    private readonly Option<string?> _cpuset = DockerFlags.Value<string?>("cpuset-cpus", null, "string", "CPUs in which to allow execution (0-3, 0,1)", ParseCpuset);
    private readonly Option<IReadOnlyList<string>> _env = DockerFlags.List("env", 'e', "list", "Set environment variables (KEY=VALUE, or KEY to copy it from here)", ParseEnvironment);
    private readonly Option<string?> _workdir = DockerFlags.Value<string?>("workdir", 'w', "string", "Working directory inside the container (absolute)", ParseWorkingDirectory);
    private readonly Option<string?> _user = DockerFlags.Value<string?>("user", 'u', "string", "Username or UID (format: <name|uid>[:<group|gid>])", ParseUser);
    private readonly Option<string?> _hostname = DockerFlags.Value<string?>("hostname", 'h', "string", "Container host name", v => v);
    private readonly Option<IReadOnlyList<MountSpec>> _volume = DockerFlags.List("volume", 'v', "list", "Bind mount a host path (/host/path:/container/path[:ro])", ParseVolume);
    private readonly Option<IReadOnlyList<MountSpec>> _tmpfs = DockerFlags.List("tmpfs", null, "list", "Mount a tmpfs directory (/run, /run:ro,size=64m)", ParseTmpfs);
    private readonly Option<bool> _readOnly = DockerFlags.Bool("read-only", "Mount the container's root filesystem as read only");
    private readonly Option<IReadOnlyList<Network>> _network = DockerFlags.List("network", null, "list", "host (share the host's network), none (the default: a private network with only loopback), or NAME: a user-defined network, made for this run (repeatable)", ParseNetwork);
    private readonly Option<IReadOnlyList<string>> _networkAlias = DockerFlags.List("network-alias", null, "list", "A further name of the container on its networks (repeatable)", v => v);
    private readonly Option<IReadOnlyList<SeccompProfile?>> _securityOpt = DockerFlags.List("security-opt", null, "list", "Security options: seccomp=FILE|unconfined|default (a Docker-format profile); no-new-privileges is always on", ParseSecurityOpt);
    private readonly Option<IReadOnlyList<PortPublish>> _publish = DockerFlags.List("publish", 'p', "list", "Publish a container's TCP port on the host's loopback: [127.0.0.1:][HOSTPORT:]CONTAINERPORT[/tcp] (no HOSTPORT: a free one, printed on stderr)", ParsePublish);
    private readonly Option<int?> _stopTimeout = DockerFlags.Value<int?>("stop-timeout", null, "int", "Seconds to wait after SIGTERM before SIGKILL when stopping (default 10)", v => ParseStopTimeout(v));
    private readonly Option<string?> _entrypoint = DockerFlags.Value<string?>("entrypoint", null, "string", "Overwrite the default ENTRYPOINT of the image (the image's CMD is dropped too, as in Docker)", v => v);
    private readonly Option<ImagePullPolicy?> _pull = DockerFlags.Value<ImagePullPolicy?>("pull", null, "string", "Pull image before running (\"always\", \"missing\", \"never\"; default missing)", v => ParsePull(v));
    private readonly Argument<string?> _rootFs = new("ROOTFS") { Arity = ArgumentArity.ZeroOrOne, Description = "host (the host's / read-only, behind a private writable layer), a directory holding a root filesystem, or an image (name[:tag] or name@digest)" };
    private readonly Argument<string[]> _command = new("COMMAND") { Arity = ArgumentArity.ZeroOrMore, Description = "The program to run and its arguments, verbatim" };
    private readonly Func<string, string?> _getEnvironmentVariable;

    private RunCommandLine(Func<string, string?> getEnvironmentVariable)
    {
        _getEnvironmentVariable = getEnvironmentVariable;

        // Flags and mounts keep the order of the command line: -v and --tmpfs both add to one list, so
        // they are read back in token order (see Mounts).
        Command = new Command("run", "Create and run a new container from an image, or the host's or a directory's root filesystem")
        {
            _cpus, _cpuset, _entrypoint, _env, _hostname, _memory, _name, _network, _networkAlias, _pids, _publish, _pull, _readOnly, _rm, _securityOpt, _stopTimeout, _tmpfs, _user, _volume, _workdir,
            DockerFlags.Unsupported("interactive", 'i', takesValue: false, "stdin is not forwarded to the container yet; pipe input through a file with -v instead"),
            DockerFlags.Unsupported("tty", 't', takesValue: false, "isotest does not allocate terminals yet; the container's output is streamed line by line"),
            DockerFlags.Unsupported("detach", 'd', takesValue: false, "isotest has no daemon yet, so a container lives only as long as the command; run it in the foreground"),
            _rootFs,
            _command,
        };

        // Docker's older, hidden alias of --network.
        _network.Aliases.Add("--net");
        HelpNotes.Set(Command, RunNotes);
    }

    private const string RunNotes = """
        Docker's form: isotest run [OPTIONS] ROOTFS|IMAGE [COMMAND] [ARG...]

        ROOTFS is 'host' (the host's / read-only, behind a private writable layer) or a directory holding a
        root filesystem; anything else is an image (pulled into the engine's store per --pull), whose
        ENTRYPOINT, CMD, ENV, WORKDIR and USER apply as in docker run. The container's output is streamed; isotest exits with the command's exit code
        (137 when the OOM killer ended it; 125 for isotest's own errors, 126 when the command cannot be
        invoked, 127 when it is not found, as docker run). Options end at ROOTFS: everything after it is
        the command. Ctrl-C stops the container (SIGTERM, then SIGKILL after the stop timeout); a second
        Ctrl-C kills it.
        """;

    /// <summary>The System.CommandLine command.</summary>
    public Command Command { get; }

    /// <summary>The <c>run</c> command, running containers through <paramref name="context"/>.</summary>
    public static Command Create(CliContext context)
    {
        var run = new RunCommandLine(context.GetEnvironmentVariable);
        run.Command.SetAction((result, _) =>
            RunCommand.ExecuteAsync(run.ToRequest(result), context.BackendFactory, context.Stdout, context.Stderr, context.StopRequested, context.KillRequested,
                () => PullProgressDisplay.For(context.Stderr, context)));
        return run.Command;
    }

    /// <summary>
    /// Parses the arguments that follow <c>run</c> into a request, without running it. Returns null when help was
    /// asked for (<c>--help</c>).
    /// </summary>
    /// <exception cref="UsageException">The arguments are wrong; the message names the flag or argument.</exception>
    public static RunRequest? Parse(IReadOnlyList<string> args, Func<string, string?>? getEnvironmentVariable = null)
    {
        var run = new RunCommandLine(getEnvironmentVariable ?? Environment.GetEnvironmentVariable);
        var root = IsoTestCommandLine.CreateRoot([run.Command]);
        var result = IsoTestCommandLine.Parse(root, ["run", .. args]);
        return result.Action is System.CommandLine.Help.HelpAction or { ClearsParseErrors: true } ? null : run.ToRequest(result);
    }

    private RunRequest ToRequest(ParseResult result)
    {
        var rootFsText = result.GetValue(_rootFs)
            ?? throw new UsageException("\"isotest run\" requires at least 1 argument: ROOTFS (host or a directory), then the command.\nUsage:  isotest run [OPTIONS] ROOTFS COMMAND [ARG...]", DockerSyntax.HelpHint(Command));
        var rootFs = ParseRootFileSystem(rootFsText);
        var command = result.GetValue(_command) ?? [];
        var entrypoint = result.GetValue(_entrypoint);
        if (command.Length == 0 && rootFs.Kind != RootFileSystemKind.Image && string.IsNullOrEmpty(entrypoint))
        {
            throw new UsageException($"no command given: isotest runs no images with a default command, so put the command after ROOTFS, e.g. isotest run {rootFsText} /bin/sh -c 'echo hi'", DockerSyntax.HelpHint(Command));
        }

        var spec = new ContainerSpec
        {
            RootFileSystem = rootFs,
            // --entrypoint X: the program is X and the rest of the line its arguments (the image's CMD is dropped).
            Entrypoint = string.IsNullOrEmpty(entrypoint) ? [] : [entrypoint],
            Command = command,
            PullPolicy = result.GetValue(_pull),
            Environment = ToEnvironment(result.GetValue(_env)!),
            WorkingDirectory = result.GetValue(_workdir),
            User = result.GetValue(_user),
            Hostname = result.GetValue(_hostname),
            Name = result.GetValue(_name),
            Limits = new ResourceLimits(NullIfUnlimited(result.GetValue(_memory)), result.GetValue(_cpus), NullIfUnlimited(result.GetValue(_pids)), result.GetValue(_cpuset)),
            Mounts = Mounts(result),
            Ports = [.. result.GetValue(_publish)!.Select(p => p.ContainerPort)],
            HostPorts = result.GetValue(_publish)!.Where(p => p.HostPort is not null).GroupBy(p => p.ContainerPort).ToDictionary(g => g.Key, g => g.Last().HostPort!.Value),
            ReadOnlyRootFileSystem = result.GetValue(_readOnly),
            Network = ModeOf(result.GetValue(_network)!),
            Networks = [.. result.GetValue(_network)!.Where(n => n.Kind == NetworkKind.Named)],
            NetworkAliases = result.GetValue(_networkAlias)!,
            Seccomp = result.GetValue(_securityOpt)!.LastOrDefault(p => p is not null) ?? SeccompProfile.Default, // the last seccomp= wins, as in Docker
            StopTimeout = TimeSpan.FromSeconds(result.GetValue(_stopTimeout) ?? 10), // Docker's default, too
        };
        // The flags said what they mean; whether that container is valid is the one rule book's call (names,
        // hostnames, limits, mounts), worded as every other IsoTest entry point words it.
        try
        {
            ContainerSpecValidator.Validate(spec);
        }
        catch (InvalidContainerSpecException e)
        {
            throw new UsageException("invalid container: " + string.Join("\n  ", e.Errors), DockerSyntax.HelpHint(Command));
        }

        return new RunRequest(spec, result.GetValue(_rm));
    }

    /// <summary>-v and --tmpfs in the order they were given, as Docker mounts them.</summary>
    private List<MountSpec> Mounts(ParseResult result)
    {
        var volumes = new Queue<MountSpec>(result.GetValue(_volume)!);
        var tmpfs = new Queue<MountSpec>(result.GetValue(_tmpfs)!);
        var mounts = new List<MountSpec>(volumes.Count + tmpfs.Count);
        foreach (var token in result.Tokens.Where(t => t.Type == System.CommandLine.Parsing.TokenType.Option))
        {
            if (Spells(_volume, token.Value))
            {
                mounts.Add(volumes.Dequeue());
            }
            else if (Spells(_tmpfs, token.Value))
            {
                mounts.Add(tmpfs.Dequeue());
            }
        }

        return mounts;
    }

    private static bool Spells(Option option, string token) => option.Name == token || option.Aliases.Contains(token);

    /// <summary>-e KEY=VALUE sets; -e KEY copies it from here, or leaves it unset when it is unset here (as Docker does); the last one wins.</summary>
    private Dictionary<string, string> ToEnvironment(IReadOnlyList<string> assignments)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var assignment in assignments)
        {
            var eq = assignment.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                environment[assignment[..eq]] = assignment[(eq + 1)..];
            }
            else if (_getEnvironmentVariable(assignment) is { } inherited)
            {
                environment[assignment] = inherited;
            }
        }

        return environment;
    }

    private static ImagePullPolicy? ParsePull(string value) => value.Trim().ToLowerInvariant() switch
    {
        "missing" => ImagePullPolicy.Missing,
        "always" => ImagePullPolicy.Always,
        "never" => ImagePullPolicy.Never,
        _ => throw new FormatException($"invalid pull option: '{value}': must be one of \"always\", \"missing\" or \"never\""),
    };

    private RootFileSystem ParseRootFileSystem(string value)
    {
        if (value == "host")
        {
            return RootFileSystem.Host;
        }

        var path = Path.GetFullPath(value);
        // Docker's rule for what names an image, with a path's look (/, ./, ../) kept for directories.
        if (!Directory.Exists(path) && !value.StartsWith('/') && !value.StartsWith('.') && ImageReference.TryParse(value, out _))
        {
            return RootFileSystem.FromImage(value);
        }

        if (!Directory.Exists(path))
        {
            throw new UsageException($"root filesystem '{value}' is neither 'host' nor an existing directory: give host, or the path of a directory that holds a root filesystem (use ./host for a directory named host)", DockerSyntax.HelpHint(Command));
        }

        return RootFileSystem.FromDirectory(path);
    }

    /// <summary>The flags' "no limit" (0) as the spec's (null).</summary>
    private static long? NullIfUnlimited(long value) => value > 0 ? value : null;

    /// <summary>Bytes, or 0 for no limit (Docker's -m 0).</summary>
    private static long ParseMemory(string value)
    {
        if (!ByteSize.TryParse(value, out var bytes, out var error))
        {
            throw new FormatException(error);
        }

        if (bytes == 0)
        {
            return 0; // Docker: 0 means no limit
        }

        return bytes >= ResourceLimits.MinimumMemoryBytes
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

        var available = System.Environment.ProcessorCount;
        if (cpus < 0.01 || cpus > available)
        {
            throw new FormatException($"the range of CPUs is from 0.01 to {available.ToString("0.00", CultureInfo.InvariantCulture)}, as there are only {available} CPUs available");
        }

        return cpus;
    }

    /// <summary>Processes, or 0 for no limit.</summary>
    private static long ParsePidsLimit(string value)
    {
        if (!long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var pids))
        {
            throw new FormatException("not a whole number: give the maximum number of processes, or -1 for no limit");
        }

        return pids switch
        {
            -1 or 0 => 0, // Docker: 0 and -1 both mean no limit
            < -1 => throw new FormatException("a pids limit is a positive number of processes, or -1 for no limit"),
            _ => pids,
        };
    }

    private static string ParseCpuset(string value)
    {
        var online = OnlineCpus.Read();
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
                throw new FormatException($"requested CPUs are not available: this machine has CPUs {OnlineCpus.Format(online)}");
            }
        }

        return value;
    }

    private static string ParseEnvironment(string value)
    {
        var eq = value.IndexOf('=', StringComparison.Ordinal);
        var key = eq < 0 ? value : value[..eq];
        return key.Length > 0 && !key.Any(char.IsWhiteSpace)
            ? value
            : throw new FormatException("an environment variable is KEY=VALUE, or KEY alone to copy it from the current environment");
    }

    private static string ParseWorkingDirectory(string value) =>
        value.StartsWith('/')
            ? value
            : throw new FormatException("the working directory needs to be an absolute path inside the container, e.g. /app");

    private static string ParseUser(string value) =>
        value.Length > 0 && !value.Any(char.IsWhiteSpace)
            ? value
            : throw new FormatException("a user is a name, uid, name:group or uid:gid");

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

    // Docker's --security-opt: seccomp=FILE|unconfined|default is honoured; no-new-privileges (and :true) is what the
    // engine always does; everything else (apparmor=, label=, systempaths=) has no meaning here and is refused.
    private static SeccompProfile? ParseSecurityOpt(string value)
    {
        var (key, rest) = value.IndexOfAny(['=', ':']) is var at and >= 0 ? (value[..at], value[(at + 1)..]) : (value, "");
        return key switch
        {
            "seccomp" when rest.Length > 0 => SeccompProfile.Parse(rest),
            "seccomp" => throw new FormatException("seccomp needs a value: seccomp=/path/profile.json, seccomp=unconfined or seccomp=default"),
            "no-new-privileges" when rest is "" or "true" => null,
            "no-new-privileges" => throw new FormatException("no-new-privileges cannot be turned off: the engine always sets it"),
            _ => throw new FormatException($"'{key}' is not supported: only seccomp=FILE|unconfined|default and no-new-privileges are (the engine has no AppArmor or SELinux profiles)"),
        };
    }

    private static Network ParseNetwork(string value) => value switch
    {
        "host" => Network.Host,
        "none" or "private" => Network.Private, // Docker's "none" is exactly our default: only loopback
        "bridge" or "default" => throw new FormatException("isotest has no bridge network: use the default private network (loopback only, same as none), host, or a network of your own (--network NAME)"),
        _ => Network.Named(value),
    };

    /// <summary>Host when asked; else the first user-defined network (the rule book reports host with networks); else private.</summary>
    private static Network ModeOf(IReadOnlyList<Network> given) =>
        given.FirstOrDefault(n => n.Kind == NetworkKind.Host) ?? given.FirstOrDefault(n => n.Kind == NetworkKind.Named) ?? Network.Private;

    /// <summary>One <c>-p</c>: the container port and, when given, the fixed host port.</summary>
    private sealed record PortPublish(int? HostPort, int ContainerPort);

    /// <summary>
    /// Docker's <c>-p</c> forms: <c>80</c>, <c>18080:80</c>, <c>127.0.0.1:18080:80</c>, <c>127.0.0.1::80</c>, each with an optional
    /// <c>/tcp</c>. The engine listens on 127.0.0.1 only, so a host address other than loopback (or all interfaces) is refused.
    /// </summary>
    private static PortPublish ParsePublish(string value)
    {
        var text = value;
        if (text.EndsWith("/tcp", StringComparison.Ordinal))
        {
            text = text[..^"/tcp".Length];
        }
        else if (text.Contains('/', StringComparison.Ordinal))
        {
            throw new FormatException($"'{value}': only TCP ports can be published (PORT or PORT/tcp)");
        }

        var parts = text.Split(':');
        var (address, host, container) = parts.Length switch
        {
            1 => ("", "", parts[0]),
            2 => ("", parts[0], parts[1]),
            3 => (parts[0], parts[1], parts[2]),
            _ => throw new FormatException($"'{value}': give [127.0.0.1:][HOSTPORT:]CONTAINERPORT, e.g. 18080:80 (IPv6 host addresses are not served)"),
        };
        if (address is not ("" or "127.0.0.1" or "0.0.0.0" or "localhost"))
        {
            throw new FormatException($"'{value}': isotest publishes ports on 127.0.0.1 only; give 127.0.0.1:{host}:{container} or leave the address out");
        }

        return new PortPublish(host.Length == 0 ? null : Port(host, "host"), Port(container, "container"));

        int Port(string number, string side) =>
            int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is >= 1 and <= 65535
                ? port
                : throw new FormatException($"'{value}': the {side} port '{number}' is not a number from 1 to 65535 (port ranges are not supported)");
    }

    private static int ParseStopTimeout(string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? seconds
            : throw new FormatException("a timeout is a whole number of seconds, 0 or more");
}
