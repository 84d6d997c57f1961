using System.Diagnostics;
using System.Globalization;

namespace IsoTest.Bench.Peers;

/// <summary>
/// The kernel's floor: <c>bench/floor/isotest-floor.c</c>, a C program doing exactly the isolation the
/// engine does for this cycle (namespaces, overlay root on a private tmpfs, /proc, /dev, /sys, pivot_root,
/// Docker's capabilities, v1 memory + cpu cgroups joined by the child) with no engine around it. It is
/// built here with the machine's C compiler and driven over a pipe, one cycle per line, so it can take
/// its turn in the same rounds as the other peers; the pipe round trip (~20 µs) is part of its figure.
/// With a server root (<see cref="ForServer"/>) each cycle is a server fixture instead: <c>busybox httpd</c> in
/// the same isolation over that directory, reached from inside its network namespace, one GET, killed.
/// </summary>
internal sealed class FloorPeer(string repositoryRoot, bool netnsAhead, string? serverRoot = null) : IPeer
{
    private Process? _driver;
    private string? _directory;

    /// <summary>The server benchmark's floor: httpd on <paramref name="rootfs"/> (a busybox root holding /www/index.html), a fresh network namespace each.</summary>
    public static FloorPeer ForServer(string repositoryRoot, string rootfs) => new(repositoryRoot, netnsAhead: false, rootfs);

    public string Name => netnsAhead ? "kernel floor, netns ahead" : "kernel floor";

    public string Notes => serverRoot is not null
        ? $"bench/floor/isotest-floor.c --root (the engine's busybox root): httpd in the engine's isolation, a fresh network namespace; no published port: TCP connects to 127.0.0.1:{ServerBenchmark.Port} made inside that namespace (every ~0.13 ms until one is accepted), then the GET there, the cheapest path any engine could offer; SIGKILL of PID 1"
        : netnsAhead
        ? "bench/floor/isotest-floor.c --netns-ahead: a network namespace made right after each cycle, as the engine's pool refills"
        : "bench/floor/isotest-floor.c: the engine's isolation in ~430 lines of C, a fresh network namespace per cycle";

    // One line per cycle: the program's whole protocol (its header comment).
    private string Request => serverRoot is not null ? $"server {ServerBenchmark.Port.ToString(CultureInfo.InvariantCulture)}" : "cycle";

    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new PeerUnavailableException("the floor program makes cgroups and mounts as root: run the bench as root");
        }

        var compiler = Shell.Which("cc") ?? throw new PeerUnavailableException("no C compiler: apt-get install gcc libc6-dev");
        _directory = Directory.CreateTempSubdirectory("isotest-bench-floor-").FullName;
        var binary = Path.Combine(_directory, "isotest-floor");
        var source = Path.Combine(repositoryRoot, "bench", "floor", "isotest-floor.c");
        var build = await Shell.RunAsync(compiler, ["-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, source], cancellationToken: cancellationToken);
        if (build.ExitCode != 0)
        {
            throw new PeerUnavailableException($"could not build {source}: {build.Stderr.Trim()}");
        }

        var info = new ProcessStartInfo(binary)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("--cgroup");
        info.ArgumentList.Add($"isotest-bench-floor-{Environment.ProcessId}{(netnsAhead ? "-ahead" : "")}{(serverRoot is not null ? "-server" : "")}");
        if (netnsAhead)
        {
            info.ArgumentList.Add("--netns-ahead");
        }

        if (serverRoot is not null)
        {
            info.ArgumentList.Add("--root");
            info.ArgumentList.Add(serverRoot);
        }

        _driver = Process.Start(info) ?? throw new PeerUnavailableException($"could not start {binary}");
        _driver.StandardInput.AutoFlush = true;
    }

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var driver = _driver ?? throw new InvalidOperationException("not prepared");
        await driver.StandardInput.WriteLineAsync(Request.AsMemory(), cancellationToken);
        var reply = await driver.StandardOutput.ReadLineAsync(cancellationToken);
        if (reply != "ok")
        {
            throw new InvalidOperationException($"the floor program failed: {reply ?? "it exited"}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_driver is not null)
        {
            // End of input ends its loop; it removes its parent cgroups on the way out.
            await Shell.EndDriverAsync(_driver);
        }

        if (_directory is not null)
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}
