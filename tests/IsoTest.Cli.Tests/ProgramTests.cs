using IsoTest.Cli.Commands;

namespace IsoTest.Cli.Tests;

/// <summary>
/// The command's own answers: help, version, and every bad input, through the in-process entry point,
/// asserting exactly what the user sees on stderr and Docker's exit code 125.
/// </summary>
public sealed class ProgramTests : IDisposable
{
    private const string Hint = "\nSee 'isotest run --help'.\n";
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-cli-program-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var exit = await Program.RunAsync(args, stdout, stderr, () => throw new InvalidOperationException("no container may be created for this command line"));
        return (exit, stdout.ToString(), stderr.ToString());
    }

    public static TheoryData<string[], string> BadInputs { get; } = new()
    {
        { ["--foo", "host", "true"], "unknown flag: --foo" },
        { ["--foo=bar", "host", "true"], "unknown flag: --foo" },
        { ["-x", "host", "true"], "unknown shorthand flag: 'x' in -x" },
        { ["-m", "abc", "host", "true"], "invalid argument \"abc\" for \"-m, --memory\" flag: 'abc' is not a size: use a number with an optional unit b, k, m or g (e.g. 64m)" },
        { ["--memory=5m", "host", "true"], "invalid argument \"5m\" for \"-m, --memory\" flag: the minimum memory limit is 6m (6 MiB), as in Docker: the container's own processes need about that much" },
        { ["-m", "-1", "host", "true"], "invalid argument \"-1\" for \"-m, --memory\" flag: '-1' is not a size: use a number with an optional unit b, k, m or g (e.g. 64m)" },
        { ["--memory"], "flag needs an argument: --memory" },
        { ["-m"], "flag needs an argument: 'm' in -m" },
        { ["--cpus", "0", "host", "true"], $"invalid argument \"0\" for \"--cpus\" flag: the range of CPUs is from 0.01 to {Environment.ProcessorCount}.00, as there are only {Environment.ProcessorCount} CPUs available" },
        { ["--cpus", "-0.5", "host", "true"], $"invalid argument \"-0.5\" for \"--cpus\" flag: the range of CPUs is from 0.01 to {Environment.ProcessorCount}.00, as there are only {Environment.ProcessorCount} CPUs available" },
        { ["--cpus", "999", "host", "true"], $"invalid argument \"999\" for \"--cpus\" flag: the range of CPUs is from 0.01 to {Environment.ProcessorCount}.00, as there are only {Environment.ProcessorCount} CPUs available" },
        { ["--cpus", "half", "host", "true"], "invalid argument \"half\" for \"--cpus\" flag: not a number of CPUs: use a decimal such as 0.5 or 2" },
        { ["--pids-limit", "ten", "host", "true"], "invalid argument \"ten\" for \"--pids-limit\" flag: not a whole number: give the maximum number of processes, or -1 for no limit" },
        { ["--pids-limit", "-5", "host", "true"], "invalid argument \"-5\" for \"--pids-limit\" flag: a pids limit is a positive number of processes, or -1 for no limit" },
        { ["--cpuset-cpus", "1-0", "host", "true"], "invalid argument \"1-0\" for \"--cpuset-cpus\" flag: not a CPU list: use numbers and ranges such as 0, 0-1 or 0,2" },
        { ["--cpuset-cpus", "a", "host", "true"], "invalid argument \"a\" for \"--cpuset-cpus\" flag: not a CPU list: use numbers and ranges such as 0, 0-1 or 0,2" },
        { ["--cpuset-cpus", "0-4095", "host", "true"], $"invalid argument \"0-4095\" for \"--cpuset-cpus\" flag: requested CPUs are not available: this machine has CPUs 0-{Environment.ProcessorCount - 1}" },
        { ["-e", "=x", "host", "true"], "invalid argument \"=x\" for \"-e, --env\" flag: an environment variable is KEY=VALUE, or KEY alone to copy it from the current environment" },
        { ["-w", "srv", "host", "true"], "invalid argument \"srv\" for \"-w, --workdir\" flag: the working directory needs to be an absolute path inside the container, e.g. /app" },
        { ["-u", "", "host", "true"], "invalid argument \"\" for \"-u, --user\" flag: a user is a name, uid, name:group or uid:gid" },
        // Names and hostnames are judged by ContainerSpecValidator, the one rule book every entry point uses.
        { ["-h", "bad host", "host", "true"], "invalid container: WithHostname(\"bad host\"): use letters, digits, '-' and '.' (no leading or trailing '-'), at most 64 characters." },
        { ["-h"], "flag needs an argument: 'h' in -h" },
        { ["--name", "a b", "host", "true"], "invalid container: WithName(\"a b\"): start with a letter or digit, then letters, digits, '_', '.' or '-' (Docker's rule, kept by every backend)." },
        { ["--name", "-bad", "host", "true"], "invalid container: WithName(\"-bad\"): start with a letter or digit, then letters, digits, '_', '.' or '-' (Docker's rule, kept by every backend)." },
        { ["-v", "/tmp", "host", "true"], "invalid argument \"/tmp\" for \"-v, --volume\" flag: a volume is HOST-PATH:CONTAINER-PATH[:ro|rw]" },
        { ["-v", "/tmp:/a:ro:x", "host", "true"], "invalid argument \"/tmp:/a:ro:x\" for \"-v, --volume\" flag: a volume is HOST-PATH:CONTAINER-PATH[:ro|rw]" },
        { ["-v", "/tmp::ro", "host", "true"], "invalid argument \"/tmp::ro\" for \"-v, --volume\" flag: a volume is HOST-PATH:CONTAINER-PATH[:ro|rw]" },
        { ["-v", "data:/data", "host", "true"], "invalid argument \"data:/data\" for \"-v, --volume\" flag: named volumes are not supported: 'data' is not a host path; give an absolute path (or one starting with ./)" },
        { ["-v", "/tmp:data", "host", "true"], "invalid argument \"/tmp:data\" for \"-v, --volume\" flag: mount path 'data' must be absolute, e.g. /data" },
        { ["-v", "/tmp:/data:z", "host", "true"], "invalid argument \"/tmp:/data:z\" for \"-v, --volume\" flag: volume option 'z' is not supported: use ro or rw" },
        { ["-v", "/nonexistent-isotest-path:/data", "host", "true"], "invalid argument \"/nonexistent-isotest-path:/data\" for \"-v, --volume\" flag: host path '/nonexistent-isotest-path' does not exist: create it first (isotest does not create host directories)" },
        { ["--tmpfs", "run", "host", "true"], "invalid argument \"run\" for \"--tmpfs\" flag: mount path 'run' must be absolute, e.g. /run" },
        { ["--tmpfs", "/run:noexec", "host", "true"], "invalid argument \"/run:noexec\" for \"--tmpfs\" flag: tmpfs option 'noexec' is not supported: use ro, rw or size=N (e.g. size=64m)" },
        { ["--tmpfs", "/run:size=lots", "host", "true"], "invalid argument \"/run:size=lots\" for \"--tmpfs\" flag: tmpfs size: 'lots' is not a size: use a number with an optional unit b, k, m or g (e.g. 64m)" },
        { ["--read-only=maybe", "host", "true"], "invalid argument \"maybe\" for \"--read-only\" flag: expected true or false" },
        { ["--network", "bridge", "host", "true"], "invalid argument \"bridge\" for \"--network\" flag: isotest has no bridge network: use the default private network (loopback only, same as none), host, or a network of your own (--network NAME)" },
        { ["--stop-timeout", "-1", "host", "true"], "invalid argument \"-1\" for \"--stop-timeout\" flag: a timeout is a whole number of seconds, 0 or more" },
        { ["-it", "host", "sh"], "flag -i (--interactive) is not supported: stdin is not forwarded to the container yet; pipe input through a file with -v instead" },
        { ["--tty", "host", "sh"], "flag --tty (--tty) is not supported: isotest does not allocate terminals yet; the container's output is streamed line by line" },
        { ["-d", "host", "sh"], "flag -d (--detach) is not supported: isotest has no daemon yet, so a container lives only as long as the command; run it in the foreground" },
        { ["-p", "80/udp", "host", "sh"], "invalid argument \"80/udp\" for \"-p, --publish\" flag: '80/udp': only TCP ports can be published (PORT or PORT/tcp)" },
        { ["-p", "10.0.0.1:8080:80", "host", "sh"], "invalid argument \"10.0.0.1:8080:80\" for \"-p, --publish\" flag: '10.0.0.1:8080:80': isotest publishes ports on 127.0.0.1 only; give 127.0.0.1:8080:80 or leave the address out" },
        { ["-p", "8000-8010:80", "host", "sh"], "invalid argument \"8000-8010:80\" for \"-p, --publish\" flag: '8000-8010:80': the host port '8000-8010' is not a number from 1 to 65535 (port ranges are not supported)" },
        { ["-p", "18080:80", "-p", "18080:81", "host", "sh"], "invalid container: WithPortBinding(18080, ...): host port 18080 is bound for container ports 80 and 81: a host port carries one container port." },
        { [], "\"isotest run\" requires at least 1 argument: ROOTFS (host or a directory), then the command.\nUsage:  isotest run [OPTIONS] ROOTFS COMMAND [ARG...]" },
        { ["--rm"], "\"isotest run\" requires at least 1 argument: ROOTFS (host or a directory), then the command.\nUsage:  isotest run [OPTIONS] ROOTFS COMMAND [ARG...]" },
        { ["host"], "no command given: isotest runs no images with a default command, so put the command after ROOTFS, e.g. isotest run host /bin/sh -c 'echo hi'" },
        { ["/nonexistent-isotest-rootfs", "sh"], "root filesystem '/nonexistent-isotest-rootfs' is neither 'host' nor an existing directory: give host, or the path of a directory that holds a root filesystem (use ./host for a directory named host)" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task Run_BadInput_NamesTheProblemAndExits125(string[] args, string message)
    {
        var (exit, stdout, stderr) = await RunAsync(["run", .. args]);

        Assert.Equal(125, exit);
        Assert.Equal($"isotest: {message}{Hint}", stderr);
        Assert.Empty(stdout);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("--rm", "--help")]
    [InlineData("-m", "64m", "--help", "host", "true")]
    public async Task RunHelp_PrintsRunUsageAndExits0(params string[] args)
    {
        var (exit, stdout, stderr) = await RunAsync(["run", .. args]);

        Assert.Equal(0, exit);
        // Generated by System.CommandLine from the flags themselves: every flag with its Docker spelling.
        Assert.Contains("isotest run [OPTIONS] ROOTFS|IMAGE [COMMAND] [ARG...]", stdout, StringComparison.Ordinal);
        foreach (var flag in new[] { "-h, --hostname", "-m, --memory", "--cpus", "--cpuset-cpus", "-e, --env", "--name", "--network", "--pids-limit", "--read-only", "--rm", "--stop-timeout", "--tmpfs", "-u, --user", "-v, --volume", "-w, --workdir", "--help" })
        {
            Assert.Contains(flag, stdout, StringComparison.Ordinal);
        }

        Assert.Contains("Swap is off".ToLowerInvariant(), stdout.ToLowerInvariant(), StringComparison.Ordinal);
        Assert.DoesNotContain("--interactive", stdout, StringComparison.Ordinal); // refused flags are hidden
        Assert.DoesNotContain("-?", stdout, StringComparison.Ordinal);
        Assert.Empty(stderr);
    }

    [Theory]
    [InlineData]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("help")]
    public async Task Help_PrintsCommandsAndExits0(params string[] args)
    {
        var (exit, stdout, stderr) = await RunAsync(args);

        Assert.Equal(0, exit);
        Assert.Contains("Isolated, capped process containers", stdout, StringComparison.Ordinal);
        foreach (var command in new[] { "run ", "version ", "completion " })
        {
            Assert.Contains(command, stdout, StringComparison.Ordinal);
        }

        Assert.Empty(stderr);
    }

    [Fact]
    public async Task Completion_Bash_PrintsAScriptThatAsksTheSuggestDirective()
    {
        var (exit, stdout, stderr) = await RunAsync("completion", "bash");

        Assert.Equal(0, exit);
        Assert.Contains("complete -o default -o nospace -F _isotest_complete isotest", stdout, StringComparison.Ordinal);
        Assert.Contains("\"[suggest:${COMP_POINT}]\" \"${COMP_LINE}\"", stdout, StringComparison.Ordinal);
        Assert.Empty(stderr);
    }

    [Theory]
    [InlineData("isotest ru", 10, "run")]
    [InlineData("isotest run --mem", 17, "--memory")]
    [InlineData("isotest run --netw", 18, "--network")]
    [InlineData("isotest completion ", 19, "bash")]
    public async Task SuggestDirective_CompletesCommandsAndFlags(string line, int position, string expected)
    {
        var (exit, stdout, _) = await RunAsync($"[suggest:{position}]", line);

        Assert.Equal(0, exit);
        Assert.Contains(expected, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task SuggestDirective_HidesRefusedFlags()
    {
        var (_, stdout, _) = await RunAsync("[suggest:16]", "isotest run --i");
        Assert.DoesNotContain("--interactive", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Completion_UnknownShell_Exits125()
    {
        var (exit, _, stderr) = await RunAsync("completion", "tcsh");

        Assert.Equal(125, exit);
        Assert.Contains("tcsh", stderr, StringComparison.Ordinal);
        Assert.EndsWith("\nSee 'isotest completion --help'.\n", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("version")]
    [InlineData("--version")]
    public async Task Version_PrintsOneLine(string arg)
    {
        var (exit, stdout, _) = await RunAsync(arg);

        Assert.Equal(0, exit);
        Assert.StartsWith("isotest version ", stdout, StringComparison.Ordinal);
        Assert.Single(stdout.TrimEnd('\n').Split('\n'));
    }

    [Theory]
    [InlineData("frobnicate", "'frobnicate' is not an isotest command")]
    [InlineData("--frobnicate", "unknown flag: --frobnicate")]
    public async Task UnknownCommand_Exits125(string arg, string message)
    {
        var (exit, _, stderr) = await RunAsync(arg);

        Assert.Equal(125, exit);
        Assert.Equal($"isotest: {message}\nSee 'isotest --help'.\n", stderr);
    }

    [Fact]
    public async Task Run_ValidArguments_ReachTheBackend()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        ContainerSpec? seen = null;

        // The backend is where parsing ends; a backend that refuses to create keeps this test off the kernel.
        var exit = await Program.RunAsync(
            ["run", "--name", "reach", "-m", "64m", _dir, "/bin/sh"],
            stdout,
            stderr,
            () => new RefusingBackend(spec => seen = spec));

        Assert.Equal(125, exit);
        Assert.Equal("reach", seen?.Name);
        Assert.Equal(RootFileSystem.FromDirectory(_dir), seen?.RootFileSystem);
        Assert.Equal($"isotest: {RefusingBackend.Message}\n", stderr.ToString());
    }

    [Fact]
    public void FormatSize_IsExactAndShort()
    {
        Assert.Equal("16MiB", RunCommand.FormatSize(16L << 20));
        Assert.Equal("1GiB", RunCommand.FormatSize(1L << 30));
        Assert.Equal("6145KiB", RunCommand.FormatSize((6L << 20) + 1024));
        Assert.Equal("6291457B", RunCommand.FormatSize((6L << 20) + 1));
    }

    /// <summary>
    /// Records the spec and refuses it the way a backend that cannot run here does. Lives only here:
    /// it tests where the parser hands over, never container behaviour (that is RunEndToEndTests).
    /// </summary>
    private sealed class RefusingBackend(Action<ContainerSpec> onCreate) : IContainerBackend
    {
        public const string Message = "refused by the test backend";

        public string Name => "refusing";

        public Task<IContainer> CreateAsync(ContainerSpec spec, CancellationToken cancellationToken = default)
        {
            onCreate(spec);
            throw new BackendUnavailableException(Message);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
