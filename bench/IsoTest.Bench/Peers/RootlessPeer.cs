using System.Diagnostics;
using System.Globalization;

namespace IsoTest.Bench.Peers;

/// <summary>
/// The engine rootless: the same cycle as <see cref="IsoTestPeer"/>, run by this benchmark program itself as the
/// non-root user <c>isotest</c> (.ci/setup.sh makes it and its delegated cgroup <c>isotest-rootless</c>), driven over a
/// pipe one cycle per line like the floor peer; the pipe round trip (~20 µs) is part of its figure. The engine runs in
/// that process, in a user namespace, exactly as in a rootless test run.
/// </summary>
internal sealed class RootlessPeer(EngineRoot root) : IPeer
{
    /// <summary>The hidden subcommand the child runs: <c>cycle-driver host|DIRECTORY</c>.</summary>
    public const string DriverCommand = "cycle-driver";

    private const string User = "isotest";

    private Process? _driver;
    private BusyboxRootFs? _rootfs;

    public string Name => "IsoTest engine rootless" + (root == EngineRoot.BusyboxDirectory ? ", busybox dir" : "");

    public string Notes => $"the same cycle as user {User} (user namespace, delegated cgroup isotest-rootless), in a child process driven over a pipe; "
        + (root == EngineRoot.Host ? "host /" : "the busybox directory root");

    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new PeerUnavailableException($"the rootless rows run as user {User} through runuser: run the bench as root");
        }

        if ((await Shell.RunAsync("id", ["-u", User], cancellationToken: cancellationToken)).ExitCode != 0)
        {
            throw new PeerUnavailableException($"no user {User}: run .ci/setup.sh (it creates the user and its delegated cgroup)");
        }

        var program = typeof(RootlessPeer).Assembly.Location;
        if ((await Shell.RunAsync("runuser", ["-u", User, "--", "test", "-r", program], cancellationToken: cancellationToken)).ExitCode != 0)
        {
            throw new PeerUnavailableException($"user {User} cannot read {program}: build from a clone it can read, or chmod -R a+rX the tree and o+x its parents");
        }

        var target = "host";
        if (root == EngineRoot.BusyboxDirectory)
        {
            _rootfs = await BusyboxRootFs.CreateAsync(cancellationToken);
            // A temp directory is the creator's alone; the rootless engine only reads it.
            File.SetUnixFileMode(_rootfs.Path, (UnixFileMode)Convert.ToInt32("755", 8));
            target = _rootfs.Path;
        }

        var info = new ProcessStartInfo("runuser")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     "-u", User, "--", "env", $"HOME=/home/{User}", $"DOTNET_CLI_HOME=/home/{User}", "DOTNET_NOLOGO=1",
                     "ISOTEST_CGROUP_PARENT=isotest-rootless", "dotnet", "exec", program, DriverCommand, target,
                 })
        {
            info.ArgumentList.Add(arg);
        }

        _driver = Process.Start(info) ?? throw new PeerUnavailableException("could not start runuser");
        _driver.StandardInput.AutoFlush = true;
        var ready = await _driver.StandardOutput.ReadLineAsync(cancellationToken);
        if (ready != "ready")
        {
            throw new PeerUnavailableException($"the rootless driver did not start: {ready ?? "it exited (its error is above)"}");
        }
    }

    /// <summary>
    /// While <see cref="RecordPhases"/> is set, each cycle's engine calls as the child timed them (the keys of
    /// <see cref="IsoTestPeer.Phases"/>), in ms, and what the rest of the round trip took: the pipe, the child's
    /// reading and writing of its lines, its loop.
    /// </summary>
    public Dictionary<string, List<double>> Phases { get; } = new()
    {
        ["create + start"] = [], ["wait for exit"] = [], ["dispose"] = [], [PipeAndDriver] = [],
    };

    public const string PipeAndDriver = "the pipe and the driver";

    public bool RecordPhases { get; set; }

    /// <summary>create + start of each recorded cycle.</summary>
    public List<double> Starts => Phases["create + start"];

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var driver = _driver ?? throw new InvalidOperationException("not prepared");
        var t0 = Stopwatch.GetTimestamp();
        await driver.StandardInput.WriteLineAsync("cycle".AsMemory(), cancellationToken);
        var reply = await driver.StandardOutput.ReadLineAsync(cancellationToken);
        var roundTrip = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        if (reply is null || !reply.StartsWith("ok ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"the rootless cycle failed: {reply ?? "the driver exited"}");
        }

        if (RecordPhases)
        {
            // "ok START WAIT DISPOSE", each as the child's engine timed it
            var times = reply[3..].Split(' ').Select(t => double.Parse(t, CultureInfo.InvariantCulture)).ToArray();
            Phases["create + start"].Add(times[0]);
            Phases["wait for exit"].Add(times[1]);
            Phases["dispose"].Add(times[2]);
            Phases[PipeAndDriver].Add(roundTrip - times.Sum());
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_driver is not null)
        {
            // End of input ends its loop; it disposes its engine (containers, cgroups, state) on the way out.
            await Shell.EndDriverAsync(_driver);
            _driver.Dispose();
            _driver = null;
        }

        _rootfs?.Dispose();
        _rootfs = null;
    }

    /// <summary>The child's side: one engine cycle per input line, "ok" or "error ..." per line, until end of input.</summary>
    public static async Task<int> DriveAsync(string target)
    {
        await using var peer = new IsoTestPeer(target == "host" ? EngineRoot.Host : EngineRoot.BusyboxDirectory) { RecordPhases = true };
        peer.PrepareOn(target == "host" ? null : target);
        Console.WriteLine("ready");
        var phases = peer.Phases;
        while (await Console.In.ReadLineAsync() is not null)
        {
            try
            {
                await peer.CycleAsync(CancellationToken.None);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ok {phases["create + start"][^1]:R} {phases["wait for exit"][^1]:R} {phases["dispose"][^1]:R}"));
                foreach (var values in phases.Values)
                {
                    values.Clear();
                }
            }
            catch (Exception e)
            {
                Console.WriteLine($"error {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
            }
        }

        return 0;
    }
}
