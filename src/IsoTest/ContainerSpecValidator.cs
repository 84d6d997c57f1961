using System.Collections.Immutable;
using System.Globalization;
using System.Text.RegularExpressions;

namespace IsoTest;

/// <summary>
/// The one home of the rules a <see cref="ContainerSpec"/> must follow, whoever made it: the builder, the
/// CLI, a backend handed a spec directly. Every problem is collected before failing, each naming the
/// builder call that sets it and how to fix it; a backend adds what only it can check to the same list.
/// </summary>
public static partial class ContainerSpecValidator
{
    /// <summary>Docker refuses memory caps below 6 MiB; the engine keeps the same floor so both backends accept the same specs.</summary>
    internal const long MinimumMemoryBytes = ResourceLimits.MinimumMemoryBytes;

    /// <summary>Linux's HOST_NAME_MAX.</summary>
    private const int MaxHostnameLength = 64;

    private const int DefaultFileMode = 0b110_100_100; // 0644

    private const int PermissionBits = 0b111_111_111_111; // 07777: setuid, setgid, sticky, rwx x3

    /// <summary>Checks <paramref name="spec"/> against every backend-independent rule.</summary>
    /// <exception cref="InvalidContainerSpecException">Something is wrong; <see cref="InvalidContainerSpecException.Errors"/> lists every problem.</exception>
    public static void Validate(ContainerSpec spec) => Validate(spec, []);

    /// <summary>
    /// Checks <paramref name="spec"/> against every backend-independent rule, and reports the problems a
    /// backend found (<paramref name="backendProblems"/>, each worded like the others) in the same exception.
    /// </summary>
    /// <exception cref="InvalidContainerSpecException">Something is wrong; <see cref="InvalidContainerSpecException.Errors"/> lists every problem.</exception>
    public static void Validate(ContainerSpec spec, IEnumerable<string> backendProblems)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(backendProblems);
        var errors = new List<string>();
        _ = Check(spec, errors);
        errors.AddRange(backendProblems);
        if (errors.Count > 0)
        {
            throw new InvalidContainerSpecException(errors);
        }
    }

    /// <summary>Turns what a builder was told into a spec (parsing sizes, taking file modes from the host), then validates it.</summary>
    internal static ContainerSpec Validate(BuilderState s)
    {
        // Only parsing happens here; every rule about the result lives in Check.
        var errors = new List<string>();
        if (s.Root is null)
        {
            errors.Add("No root filesystem: call FromHost() (the programs installed here), FromDirectory(path) or FromImage(reference).");
        }

        var spec = new ContainerSpec
        {
            RootFileSystem = s.Root ?? RootFileSystem.Host, // the host root has no rules of its own, so the placeholder adds no error
            Entrypoint = s.Entrypoint,
            Command = s.Command,
            Environment = s.Environment,
            WorkingDirectory = s.WorkingDirectory,
            User = s.User,
            Hostname = s.Hostname,
            Name = s.Name,
            Labels = s.Labels,
            Limits = new ResourceLimits(ParseMemory(s.Memory, errors), s.Cpus, s.Pids, s.Cpuset),
            // A bound port is published too; WithPort(80).WithPortBinding(18080, 80) publishes it once.
            Ports = [.. s.Ports, .. s.PortBindings.Select(b => b.ContainerPort).Distinct().Where(p => !s.Ports.Contains(p))],
            HostPorts = HostPorts(s.PortBindings, errors),
            Mounts = [.. s.Mounts.Select(m => ToMount(m, errors))],
            Files = [.. s.Files.Select(ToFile)],
            ReadOnlyRootFileSystem = s.ReadOnlyRoot,
            // The first user-defined network is also the container's network; Host with networks is reported by CheckNetworks.
            Network = s.Network.Kind == NetworkKind.Host || s.Networks.IsEmpty ? s.Network : s.Networks[0],
            Networks = s.Networks,
            NetworkAliases = s.NetworkAliases,
            Seccomp = s.Seccomp,
            WaitStrategy = s.WaitStrategy,
            StopTimeout = s.StopTimeout ?? TimeSpan.FromSeconds(10),
            PullPolicy = s.PullPolicy,
            PullProgress = s.PullProgress,
        };
        var seccomp = Check(spec, errors);
        if (errors.Count > 0)
        {
            throw new InvalidContainerSpecException(errors);
        }

        return spec with { Seccomp = seccomp! };
    }

    /// <summary>Adds every broken rule to <paramref name="errors"/>; returns the seccomp profile read and parsed (null when it could not be).</summary>
    private static SeccompProfile? Check(ContainerSpec spec, List<string> errors)
    {
        CheckRoot(spec, errors);
        CheckCommand(spec, errors);
        CheckEnvironment(spec, errors);
        CheckIdentity(spec, errors);
        CheckLimits(spec.Limits, errors);
        CheckPorts(spec, errors);
        foreach (var network in spec.Networks)
        {
            CheckNetwork(network, errors);
        }

        CheckNetworks(spec, errors);
        CheckMounts(spec, errors);
        CheckFiles(spec, errors);
        var seccomp = spec.Seccomp.Resolve($"WithSeccompProfile({spec.Seccomp})", errors);

        if (spec.StopTimeout < TimeSpan.Zero)
        {
            errors.Add($"WithStopTimeout({spec.StopTimeout}): the stop timeout cannot be negative; use TimeSpan.Zero to kill at once.");
        }

        if (spec.WaitStrategy is { } wait)
        {
            foreach (var port in wait.PortsUsed.Distinct().Where(p => !spec.Ports.Contains(p)))
            {
                errors.Add($"WaitFor({wait}): port {port} is not published: add WithPort({port}).");
            }
        }

        return seccomp;
    }

    private static long? ParseMemory(MemoryRequest? memory, List<string> errors)
    {
        switch (memory)
        {
            case { Text: { } text }:
                if (ByteSize.TryParse(text, out var parsed, out var problem))
                {
                    return parsed;
                }

                errors.Add($"WithMemoryLimit(\"{text}\"): {problem}.");
                return null;
            default:
                return memory?.Bytes;
        }
    }

    private static MountSpec ToMount(MountRequest m, List<string> errors)
    {
        long? size = null;
        if (m.SizeText is { } sizeText)
        {
            if (ByteSize.TryParse(sizeText, out var parsed, out var problem))
            {
                size = parsed;
            }
            else
            {
                errors.Add($"{MountCall(m.Kind, m.Source, m.Target)}: size \"{sizeText}\": {problem}.");
            }
        }

        return new MountSpec(m.Kind, m.Source, m.Target, m.ReadOnly, size);
    }

    /// <summary>A file copied without a mode keeps the host file's (as <c>docker cp</c> does).</summary>
    private static FileCopySpec ToFile(FileRequest f)
    {
        var mode = f.Mode is { } given ? (int)given : DefaultFileMode;
        if (f.Mode is null && f.SourcePath is { } source && Path.IsPathFullyQualified(source) && File.Exists(source) && !OperatingSystem.IsWindows())
        {
            mode = (int)File.GetUnixFileMode(source);
        }

        return new FileCopySpec(f.Target, f.Content is null ? (ReadOnlyMemory<byte>?)null : f.Content, f.SourcePath, mode, f.Uid, f.Gid);
    }

    private static void CheckRoot(ContainerSpec spec, List<string> errors)
    {
        switch (spec.RootFileSystem)
        {
            case { Kind: RootFileSystemKind.Directory, Source: var path }:
                if (CheckHostPath($"FromDirectory(\"{path}\")", path ?? "", errors) && !Directory.Exists(path))
                {
                    errors.Add($"FromDirectory(\"{path}\"): the directory does not exist (or is not a directory): give the directory holding the root filesystem.");
                }

                break;
            case { Kind: RootFileSystemKind.ImageArchive, Source: var path }:
                if (CheckHostPath($"FromImageArchive(\"{path}\")", path ?? "", errors) && !File.Exists(path) && !Directory.Exists(path))
                {
                    errors.Add($"FromImageArchive(\"{path}\"): no such file or directory: give a docker save archive (docker save -o FILE) or an OCI image layout (directory or tar).");
                }

                break;
            case { Kind: RootFileSystemKind.Image, Source: var reference }:
                if (ImageReference.Validate(reference) is { } why)
                {
                    errors.Add($"FromImage(\"{reference}\"): not an image reference: {why}; use a name with an optional tag or digest, e.g. \"busybox:latest\".");
                }

                break;
        }
    }

    private static void CheckCommand(ContainerSpec spec, List<string> errors)
    {
        if (spec.Command.Count == 0 && spec.Entrypoint.Count == 0)
        {
            // Images carry a default command; a host or directory root has none to fall back on.
            if (spec.RootFileSystem.Kind is not (RootFileSystemKind.Image or RootFileSystemKind.ImageArchive))
            {
                errors.Add("No command: call WithCommand(program, args...) (only images bring a default command).");
            }
        }
        else if (string.IsNullOrEmpty(spec.Entrypoint.Count == 0 ? spec.Command[0] : spec.Entrypoint[0]))
        {
            errors.Add($"{(spec.Entrypoint.Count == 0 ? "WithCommand" : "WithEntrypoint")}: the program (the first element) is empty: name the program to run.");
        }

        CheckNoNul("WithEntrypoint", spec.Entrypoint, errors);
        CheckNoNul("WithCommand", spec.Command, errors);
    }

    private static void CheckEnvironment(ContainerSpec spec, List<string> errors)
    {
        foreach (var (key, value) in spec.Environment.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (key.Length == 0 || key.Contains('=', StringComparison.Ordinal) || key.Contains('\0', StringComparison.Ordinal))
            {
                errors.Add($"WithEnvironment(\"{Printable(key)}\", ...): a variable name cannot be empty or contain '=' or NUL.");
            }

            if (value.Contains('\0', StringComparison.Ordinal))
            {
                errors.Add($"WithEnvironment(\"{Printable(key)}\", ...): the value contains NUL, which no program can receive.");
            }
        }

        foreach (var (key, value) in spec.Labels.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (key.Length == 0 || key.Contains('\0', StringComparison.Ordinal) || value.Contains('\0', StringComparison.Ordinal))
            {
                errors.Add($"WithLabel(\"{Printable(key)}\", ...): a label needs a non-empty key, and neither key nor value may contain NUL.");
            }
        }
    }

    private static void CheckIdentity(ContainerSpec spec, List<string> errors)
    {
        if (spec.WorkingDirectory is { } dir && !IsContainerPath(dir))
        {
            errors.Add($"WithWorkingDirectory(\"{Printable(dir)}\"): must be an absolute path inside the container, e.g. \"/app\".");
        }

        if (spec.User is { } user && !IsUser(user))
        {
            errors.Add($"WithUser(\"{Printable(user)}\"): use uid[:gid] (e.g. \"1000\" or \"1000:1000\", ids below 4294967295) or a user name (e.g. \"postgres\").");
        }

        if (spec.Hostname is { } host && (host.Length > MaxHostnameLength || !HostnameSyntax().IsMatch(host)))
        {
            errors.Add($"WithHostname(\"{Printable(host)}\"): use letters, digits, '-' and '.' (no leading or trailing '-'), at most {MaxHostnameLength} characters.");
        }

        if (spec.Name is { } name && !NameSyntax().IsMatch(name))
        {
            errors.Add($"WithName(\"{Printable(name)}\"): start with a letter or digit, then letters, digits, '_', '.' or '-' (Docker's rule, kept by every backend).");
        }
    }

    private static void CheckLimits(ResourceLimits limits, List<string> errors)
    {
        if (limits.MemoryBytes is { } m && m < MinimumMemoryBytes)
        {
            errors.Add($"WithMemoryLimit: {m} bytes is below the minimum of 6 MiB (Docker's minimum, kept by every backend): use at least \"6m\".");
        }

        if (limits.Cpus is { } cpus && (double.IsNaN(cpus) || cpus <= 0 || cpus > Environment.ProcessorCount))
        {
            errors.Add($"WithCpuLimit({cpus.ToString(CultureInfo.InvariantCulture)}): give a number of cores above 0 and at most {Environment.ProcessorCount} (this machine's CPUs), e.g. 0.5.");
        }

        if (limits.Pids is { } pids && pids < 1)
        {
            errors.Add($"WithPidsLimit({pids}): at least 1 process is needed (the command itself).");
        }

        if (limits.CpusetCpus is { } cpuset && !IsCpuset(cpuset))
        {
            errors.Add($"WithCpuset(\"{Printable(cpuset)}\"): not cpuset syntax: use CPU numbers and ascending ranges separated by commas, e.g. \"0-1\" or \"0,2\".");
        }
    }

    private static Dictionary<int, int> HostPorts(ImmutableList<(int HostPort, int ContainerPort)> bindings, List<string> errors)
    {
        var ports = new Dictionary<int, int>();
        foreach (var (host, container) in bindings)
        {
            if (!ports.TryAdd(container, host))
            {
                errors.Add($"WithPortBinding({host}, {container}): container port {container} is already bound to host port {ports[container]}: bind each container port once.");
            }
        }

        return ports;
    }

    private static void CheckPorts(ContainerSpec spec, List<string> errors)
    {
        foreach (var (container, host) in spec.HostPorts)
        {
            if (host is < 1 or > 65535)
            {
                errors.Add($"WithPortBinding({host}, {container}): a host port is in 1..65535 (for a free ephemeral one, use WithPort({container})).");
            }

            if (!spec.Ports.Contains(container))
            {
                errors.Add($"WithPortBinding({host}, {container}): container port {container} is not in Ports: publish it (WithPort) to bind it.");
            }

            // The host's network has no forwarder: the container's port is the host's own.
            if (spec.Network.Kind == NetworkKind.Host && host != container)
            {
                errors.Add($"WithPortBinding({host}, {container}) with Network.Host: the container's port {container} is the host's own port; drop the binding or use a private network.");
            }
        }

        foreach (var group in spec.HostPorts.GroupBy(p => p.Value).Where(g => g.Count() > 1))
        {
            errors.Add($"WithPortBinding({group.Key}, ...): host port {group.Key} is bound for container ports {string.Join(" and ", group.Select(p => p.Key).Order())}: a host port carries one container port.");
        }

        foreach (var port in spec.Ports.Where(p => p is < 1 or > 65535).Distinct())
        {
            errors.Add($"WithPort({port}): a TCP port is in 1..65535.");
        }

        foreach (var port in spec.Ports.GroupBy(p => p).Where(g => g.Count() > 1).Select(g => g.Key))
        {
            errors.Add($"WithPort({port}) is given more than once: publish each port once.");
        }
    }

    private static void CheckNetwork(Network network, List<string> errors)
    {
        if (network is not { Kind: NetworkKind.Named, Name: { } name })
        {
            return;
        }

        // Docker's built-in networks are modes here, not networks to join: say which value means them.
        if (name is "host" or "none" or "bridge" or "default")
        {
            errors.Add($"WithNetwork(\"{Printable(name)}\"): '{name}' is not a user-defined network: use Network.Host for the host's network, or Network.Private (the default) for loopback only.");
        }
        else if (!NameSyntax().IsMatch(name))
        {
            errors.Add($"WithNetwork(\"{Printable(name)}\"): a network name starts with a letter or digit, then letters, digits, '_', '.' or '-' (Docker's rule).");
        }
    }

    private static void CheckNetworks(ContainerSpec spec, List<string> errors)
    {
        if (spec.Networks.Count > 0 && spec.Network.Kind == NetworkKind.Host)
        {
            errors.Add("WithNetwork(Network.Host) and WithNetwork(network): a container on the host's network cannot join another; drop one of them.");
        }

        foreach (var twice in spec.Networks.GroupBy(n => n.Name, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            errors.Add($"WithNetwork: network '{twice.Key}' is joined twice: join it once.");
        }

        if (spec.NetworkAliases.Count > 0 && spec.Networks.Count == 0)
        {
            errors.Add($"WithNetworkAliases({string.Join(", ", spec.NetworkAliases.Select(a => $"\"{Printable(a)}\""))}): aliases are names on a network: add WithNetwork(network).");
        }

        foreach (var alias in spec.NetworkAliases.Distinct(StringComparer.Ordinal))
        {
            if (alias.Length > MaxHostnameLength || !HostnameSyntax().IsMatch(alias))
            {
                errors.Add($"WithNetworkAliases(\"{Printable(alias)}\"): not a valid host name: use letters, digits and '-' (no leading or trailing '-') in dot-separated labels, at most {MaxHostnameLength} characters.");
            }
        }

        foreach (var twice in spec.NetworkAliases.GroupBy(a => a, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
        {
            errors.Add($"WithNetworkAliases: alias '{twice.Key}' is given twice: give it once.");
        }
    }

    private static void CheckMounts(ContainerSpec spec, List<string> errors)
    {
        foreach (var m in spec.Mounts)
        {
            var call = MountCall(m.Kind, m.Source, m.Target);
            if (!IsContainerPath(m.Target))
            {
                errors.Add($"{call}: the mount target must be an absolute path inside the container, e.g. \"/data\".");
            }
            else if (Normalize(m.Target) == "/")
            {
                errors.Add($"{call}: cannot mount over the root '/': choose FromDirectory(...) for a different root, or a target below '/'.");
            }

            if (m.Kind == MountKind.Bind && CheckHostPath(call, m.Source ?? "", errors) && !Path.Exists(m.Source))
            {
                errors.Add($"{call}: the host path does not exist: create it before starting the container.");
            }

            if (m.Kind == MountKind.CopyOnWrite && CheckHostPath(call, m.Source ?? "", errors) && !Directory.Exists(m.Source))
            {
                errors.Add($"{call}: the host directory does not exist (or is not a directory): create it first.");
            }

            if (m.SizeBytes is <= 0)
            {
                errors.Add($"{call}: size {m.SizeBytes} must be above zero; leave it out for the kernel's default.");
            }
        }

        foreach (var target in spec.Mounts.Where(m => IsContainerPath(m.Target)).GroupBy(m => Normalize(m.Target)).Where(g => g.Count() > 1).Select(g => g.Key))
        {
            errors.Add($"Mount target \"{target}\" is used by more than one mount: give each mount its own target.");
        }
    }

    private static string MountCall(MountKind kind, string? source, string target) => kind switch
    {
        MountKind.Bind => $"WithBindMount(\"{source}\", \"{target}\")",
        MountKind.Tmpfs => $"WithTmpfsMount(\"{target}\")",
        _ => $"WithCopyOnWriteMount(\"{source}\", \"{target}\")",
    };

    private static void CheckFiles(ContainerSpec spec, List<string> errors)
    {
        foreach (var f in spec.Files)
        {
            var call = f.SourcePath is null ? $"WithFile(\"{f.Target}\")" : $"WithFileFrom(\"{f.SourcePath}\", \"{f.Target}\")";
            if (!IsContainerPath(f.Target) || f.Target.EndsWith('/'))
            {
                errors.Add($"{call}: the target must be an absolute file path inside the container, e.g. \"/etc/app.conf\".");
            }

            if ((f.Content is null) == (f.SourcePath is null))
            {
                errors.Add($"{call}: give either the content or a host file to copy, not {(f.Content is null ? "neither" : "both")}.");
            }

            if (f.SourcePath is { } source && CheckHostPath(call, source, errors) && !File.Exists(source))
            {
                errors.Add($"{call}: the host file does not exist (or is a directory): give an existing file.");
            }

            if ((f.Mode & ~PermissionBits) != 0 || f.Mode < 0)
            {
                errors.Add($"{call}: mode {Convert.ToString(f.Mode, 8)} (octal) has bits beyond permissions: use UnixFileMode flags (at most 07777).");
            }

            if (f.Uid < 0 || f.Gid < 0)
            {
                errors.Add($"{call}: owner {f.Uid}:{f.Gid}: uid and gid cannot be negative.");
            }

            if (spec.ReadOnlyRootFileSystem && IsContainerPath(f.Target) && !IsUnderWritableMount(f.Target, spec.Mounts))
            {
                errors.Add($"{call}: the root filesystem is read-only (WithReadOnlyRootFileSystem), so the file cannot be written there: add a writable mount covering it (e.g. WithTmpfsMount) or drop WithReadOnlyRootFileSystem.");
            }
        }

        foreach (var target in spec.Files.Where(f => IsContainerPath(f.Target)).GroupBy(f => Normalize(f.Target)).Where(g => g.Count() > 1).Select(g => g.Key))
        {
            errors.Add($"File target \"{target}\" is written more than once: keep one WithFile/WithFileFrom per path.");
        }
    }

    /// <summary>False (with an error) when a host path is relative: it would depend on the test runner's working directory.</summary>
    private static bool CheckHostPath(string call, string path, List<string> errors)
    {
        if (path.Length == 0 || path.Contains('\0', StringComparison.Ordinal) || !Path.IsPathFullyQualified(path))
        {
            errors.Add($"{call}: host path \"{Printable(path)}\" must be absolute (it would otherwise depend on the test runner's working directory): use Path.GetFullPath(...).");
            return false;
        }

        return true;
    }

    private static void CheckNoNul(string call, IEnumerable<string> args, List<string> errors)
    {
        foreach (var (arg, index) in args.Select((a, i) => (a, i)).Where(p => p.a.Contains('\0', StringComparison.Ordinal)))
        {
            errors.Add($"{call}: argument {index} (\"{Printable(arg)}\") contains NUL, which no program can receive.");
        }
    }

    private static bool IsContainerPath(string path) =>
        path.StartsWith('/') && !path.Contains('\0', StringComparison.Ordinal);

    private static string Normalize(string containerPath)
    {
        var trimmed = containerPath.TrimEnd('/');
        return trimmed.Length == 0 ? "/" : trimmed;
    }

    private static bool IsUnderWritableMount(string target, IReadOnlyList<MountSpec> mounts) =>
        mounts.Any(m => !m.ReadOnly && IsContainerPath(m.Target)
            && target.StartsWith(Normalize(m.Target) + "/", StringComparison.Ordinal));

    private static bool IsUser(string user)
    {
        var parts = user.Split(':');
        return parts.Length is 1 or 2 && parts.All(p => UserPartSyntax().IsMatch(p) && (!char.IsAsciiDigit(p[0]) || uint.TryParse(p, CultureInfo.InvariantCulture, out var id) && id != uint.MaxValue));
    }

    private static bool IsCpuset(string cpuset)
    {
        if (!CpusetSyntax().IsMatch(cpuset))
        {
            return false;
        }

        foreach (var part in cpuset.Split(','))
        {
            var range = part.Split('-');
            if (!int.TryParse(range[0], CultureInfo.InvariantCulture, out var low)
                || (range.Length == 2 && (!int.TryParse(range[1], CultureInfo.InvariantCulture, out var high) || high < low)))
            {
                return false;
            }
        }

        return true;
    }

    private static string Printable(string text) => text.Replace("\0", "\\0", StringComparison.Ordinal);

    [GeneratedRegex(@"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$", RegexOptions.CultureInvariant)]
    private static partial Regex CpusetSyntax();

    [GeneratedRegex(@"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex NameSyntax();

    [GeneratedRegex(@"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$", RegexOptions.CultureInvariant)]
    private static partial Regex HostnameSyntax();

    // Numeric ids, or names as useradd accepts them (letters, digits, '_', '-', '.', an optional trailing '$').
    [GeneratedRegex(@"^([0-9]+|[A-Za-z_][A-Za-z0-9_.-]*\$?)$", RegexOptions.CultureInvariant)]
    private static partial Regex UserPartSyntax();
}
