using System.Globalization;
using System.Text.RegularExpressions;

namespace IsoTest;

/// <summary>Turns what a builder was told into a <see cref="ContainerSpec"/>, collecting every problem before failing.</summary>
internal static partial class ContainerSpecValidator
{
    /// <summary>Docker refuses memory caps below 6 MiB; the engine keeps the same floor so both backends accept the same specs.</summary>
    internal const long MinimumMemoryBytes = ResourceLimits.MinimumMemoryBytes;

    /// <summary>Linux's HOST_NAME_MAX.</summary>
    private const int MaxHostnameLength = 64;

    private const int DefaultFileMode = 0b110_100_100; // 0644

    private const int PermissionBits = 0b111_111_111_111; // 07777: setuid, setgid, sticky, rwx x3

    public static ContainerSpec Validate(BuilderState s)
    {
        var errors = new List<string>();

        CheckRoot(s, errors);
        CheckCommand(s, errors);
        CheckEnvironment(s, errors);
        CheckIdentity(s, errors);
        var limits = CheckLimits(s, errors);
        CheckPorts(s, errors);
        var mounts = CheckMounts(s, errors);
        var files = CheckFiles(s, mounts, errors);
        var seccomp = s.Seccomp.Resolve($"WithSeccompProfile({s.Seccomp})", errors);

        if (s.StopTimeout is { } stop && stop < TimeSpan.Zero)
        {
            errors.Add($"WithStopTimeout({stop}): the stop timeout cannot be negative; use TimeSpan.Zero to kill at once.");
        }

        if (s.WaitStrategy is { } wait)
        {
            foreach (var port in wait.PortsUsed.Distinct().Where(p => !s.Ports.Contains(p)))
            {
                errors.Add($"WaitFor({wait}): port {port} is not published: add WithPort({port}).");
            }
        }

        if (errors.Count > 0)
        {
            throw new InvalidContainerSpecException(errors);
        }

        return new ContainerSpec
        {
            RootFileSystem = s.Root!,
            Entrypoint = s.Entrypoint,
            Command = s.Command,
            Environment = s.Environment,
            WorkingDirectory = s.WorkingDirectory,
            User = s.User,
            Hostname = s.Hostname,
            Name = s.Name,
            Labels = s.Labels,
            Limits = limits,
            Ports = s.Ports,
            Mounts = mounts,
            Files = files,
            ReadOnlyRootFileSystem = s.ReadOnlyRoot,
            Network = s.Network,
            Seccomp = seccomp!,
            WaitStrategy = s.WaitStrategy,
            StopTimeout = s.StopTimeout ?? TimeSpan.FromSeconds(10),
        };
    }

    private static void CheckRoot(BuilderState s, List<string> errors)
    {
        switch (s.Root)
        {
            case null:
                errors.Add("No root filesystem: call FromHost() (the programs installed here), FromDirectory(path) or FromImage(reference).");
                break;
            case { Kind: RootFileSystemKind.Directory, Source: var path }:
                if (CheckHostPath($"FromDirectory(\"{path}\")", path!, errors) && !Directory.Exists(path))
                {
                    errors.Add($"FromDirectory(\"{path}\"): the directory does not exist (or is not a directory): give the directory holding the root filesystem.");
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

    private static void CheckCommand(BuilderState s, List<string> errors)
    {
        if (s.Command.IsEmpty && s.Entrypoint.IsEmpty)
        {
            // Images carry a default command; a host or directory root has none to fall back on.
            if (s.Root is not { Kind: RootFileSystemKind.Image })
            {
                errors.Add("No command: call WithCommand(program, args...) (only images bring a default command).");
            }
        }
        else if (string.IsNullOrEmpty(s.Entrypoint.IsEmpty ? s.Command[0] : s.Entrypoint[0]))
        {
            errors.Add($"{(s.Entrypoint.IsEmpty ? "WithCommand" : "WithEntrypoint")}: the program (the first element) is empty: name the program to run.");
        }

        CheckNoNul("WithEntrypoint", s.Entrypoint, errors);
        CheckNoNul("WithCommand", s.Command, errors);
    }

    private static void CheckEnvironment(BuilderState s, List<string> errors)
    {
        foreach (var (key, value) in s.Environment.OrderBy(p => p.Key, StringComparer.Ordinal))
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

        foreach (var (key, value) in s.Labels.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (key.Length == 0 || key.Contains('\0', StringComparison.Ordinal) || value.Contains('\0', StringComparison.Ordinal))
            {
                errors.Add($"WithLabel(\"{Printable(key)}\", ...): a label needs a non-empty key, and neither key nor value may contain NUL.");
            }
        }
    }

    private static void CheckIdentity(BuilderState s, List<string> errors)
    {
        if (s.WorkingDirectory is { } dir && !IsContainerPath(dir))
        {
            errors.Add($"WithWorkingDirectory(\"{Printable(dir)}\"): must be an absolute path inside the container, e.g. \"/app\".");
        }

        if (s.User is { } user && !IsUser(user))
        {
            errors.Add($"WithUser(\"{Printable(user)}\"): use uid[:gid] (e.g. \"1000\" or \"1000:1000\", ids below 4294967295) or a user name (e.g. \"postgres\").");
        }

        if (s.Hostname is { } host && (host.Length > MaxHostnameLength || !HostnameSyntax().IsMatch(host)))
        {
            errors.Add($"WithHostname(\"{Printable(host)}\"): use letters, digits, '-' and '.' (no leading or trailing '-'), at most {MaxHostnameLength} characters.");
        }

        if (s.Name is { } name && !NameSyntax().IsMatch(name))
        {
            errors.Add($"WithName(\"{Printable(name)}\"): start with a letter or digit, then letters, digits, '_', '.' or '-' (Docker's rule, kept by every backend).");
        }
    }

    private static ResourceLimits CheckLimits(BuilderState s, List<string> errors)
    {
        long? memory = null;
        switch (s.Memory)
        {
            case { Text: { } text }:
                if (!ByteSize.TryParse(text, out var parsed, out var problem))
                {
                    errors.Add($"WithMemoryLimit(\"{text}\"): {problem}.");
                }
                else
                {
                    memory = parsed;
                }

                break;
            case { Bytes: { } bytes }:
                memory = bytes;
                break;
        }

        if (memory is { } m && m < MinimumMemoryBytes)
        {
            errors.Add($"WithMemoryLimit({Describe(s.Memory!)}): {m} bytes is below the minimum of 6 MiB (Docker's minimum, kept by every backend): use at least \"6m\".");
        }

        if (s.Cpus is { } cpus && (double.IsNaN(cpus) || cpus <= 0 || cpus > Environment.ProcessorCount))
        {
            errors.Add($"WithCpuLimit({cpus.ToString(CultureInfo.InvariantCulture)}): give a number of cores above 0 and at most {Environment.ProcessorCount} (this machine's CPUs), e.g. 0.5.");
        }

        if (s.Pids is { } pids && pids < 1)
        {
            errors.Add($"WithPidsLimit({pids}): at least 1 process is needed (the command itself).");
        }

        if (s.Cpuset is { } cpuset && !IsCpuset(cpuset))
        {
            errors.Add($"WithCpuset(\"{Printable(cpuset)}\"): not cpuset syntax: use CPU numbers and ascending ranges separated by commas, e.g. \"0-1\" or \"0,2\".");
        }

        return new ResourceLimits(memory, s.Cpus, s.Pids, s.Cpuset);
    }

    private static void CheckPorts(BuilderState s, List<string> errors)
    {
        foreach (var port in s.Ports.Where(p => p is < 1 or > 65535).Distinct())
        {
            errors.Add($"WithPort({port}): a TCP port is in 1..65535.");
        }

        foreach (var port in s.Ports.GroupBy(p => p).Where(g => g.Count() > 1).Select(g => g.Key))
        {
            errors.Add($"WithPort({port}) is given more than once: publish each port once.");
        }
    }

    private static List<MountSpec> CheckMounts(BuilderState s, List<string> errors)
    {
        var mounts = new List<MountSpec>();
        foreach (var m in s.Mounts)
        {
            var call = m.Kind switch
            {
                MountKind.Bind => $"WithBindMount(\"{m.Source}\", \"{m.Target}\")",
                MountKind.Tmpfs => $"WithTmpfsMount(\"{m.Target}\")",
                _ => $"WithCopyOnWriteMount(\"{m.Source}\", \"{m.Target}\")",
            };
            if (!IsContainerPath(m.Target))
            {
                errors.Add($"{call}: the mount target must be an absolute path inside the container, e.g. \"/data\".");
            }
            else if (Normalize(m.Target) == "/")
            {
                errors.Add($"{call}: cannot mount over the root '/': choose FromDirectory(...) for a different root, or a target below '/'.");
            }

            if (m.Kind == MountKind.Bind && CheckHostPath(call, m.Source!, errors) && !Path.Exists(m.Source))
            {
                errors.Add($"{call}: the host path does not exist: create it before starting the container.");
            }

            if (m.Kind == MountKind.CopyOnWrite && CheckHostPath(call, m.Source!, errors) && !Directory.Exists(m.Source))
            {
                errors.Add($"{call}: the host directory does not exist (or is not a directory): create it first.");
            }

            long? size = null;
            if (m.SizeText is { } sizeText)
            {
                if (!ByteSize.TryParse(sizeText, out var parsed, out var problem))
                {
                    errors.Add($"{call}: size \"{sizeText}\": {problem}.");
                }
                else if (parsed <= 0)
                {
                    errors.Add($"{call}: size \"{sizeText}\" must be above zero; leave it out for the kernel's default.");
                }
                else
                {
                    size = parsed;
                }
            }

            mounts.Add(new MountSpec(m.Kind, m.Source, m.Target, m.ReadOnly, size));
        }

        foreach (var target in s.Mounts.Where(m => IsContainerPath(m.Target)).GroupBy(m => Normalize(m.Target)).Where(g => g.Count() > 1).Select(g => g.Key))
        {
            errors.Add($"Mount target \"{target}\" is used by more than one mount: give each mount its own target.");
        }

        return mounts;
    }

    private static List<FileCopySpec> CheckFiles(BuilderState s, List<MountSpec> mounts, List<string> errors)
    {
        var files = new List<FileCopySpec>();
        foreach (var f in s.Files)
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

            var mode = f.Mode is { } given ? (int)given : DefaultFileMode;
            if (f.SourcePath is { } source && CheckHostPath(call, source, errors))
            {
                if (!File.Exists(source))
                {
                    errors.Add($"{call}: the host file does not exist (or is a directory): give an existing file.");
                }
                else if (f.Mode is null && !OperatingSystem.IsWindows())
                {
                    mode = (int)File.GetUnixFileMode(source);
                }
            }

            if ((mode & ~PermissionBits) != 0 || mode < 0)
            {
                errors.Add($"{call}: mode {Convert.ToString(mode, 8)} (octal) has bits beyond permissions: use UnixFileMode flags (at most 07777).");
            }

            if (f.Uid < 0 || f.Gid < 0)
            {
                errors.Add($"{call}: owner {f.Uid}:{f.Gid}: uid and gid cannot be negative.");
            }

            if (s.ReadOnlyRoot && IsContainerPath(f.Target) && !IsUnderWritableMount(f.Target, mounts))
            {
                errors.Add($"{call}: the root filesystem is read-only (WithReadOnlyRootFileSystem), so the file cannot be written there: add a writable mount covering it (e.g. WithTmpfsMount) or drop WithReadOnlyRootFileSystem.");
            }

            files.Add(new FileCopySpec(f.Target, f.Content is null ? (ReadOnlyMemory<byte>?)null : f.Content, f.SourcePath, mode, f.Uid, f.Gid));
        }

        foreach (var target in s.Files.Where(f => IsContainerPath(f.Target)).GroupBy(f => Normalize(f.Target)).Where(g => g.Count() > 1).Select(g => g.Key))
        {
            errors.Add($"File target \"{target}\" is written more than once: keep one WithFile/WithFileFrom per path.");
        }

        return files;
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

    private static bool IsUnderWritableMount(string target, List<MountSpec> mounts) =>
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

    private static string Describe(MemoryRequest memory) => memory.Text is { } text ? $"\"{text}\"" : memory.Bytes!.Value.ToString(CultureInfo.InvariantCulture);

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
