using System.Diagnostics;

namespace IsoTest.Bench.Peers;

/// <summary>
/// The kernel's floor: <c>bench/floor/isotest-floor.c</c>, a C program doing exactly the isolation the
/// engine does for this cycle (namespaces, overlay root on a private tmpfs, /proc, /dev, /sys, pivot_root,
/// Docker's capabilities, v1 memory + cpu cgroups joined by the child) with no engine around it. It is
/// built here with the machine's C compiler and driven over a pipe, one cycle per line, so it can take
/// its turn in the same rounds as the other peers; the pipe round trip (~20 µs) is part of its figure.
/// </summary>
internal sealed class FloorPeer(string repositoryRoot, bool netnsAhead) : IPeer
{
    private Process? _driver;
    private string? _directory;

    public string Name => netnsAhead ? "kernel floor, netns ahead" : "kernel floor";

    public string Notes => netnsAhead
        ? "bench/floor/isotest-floor.c --netns-ahead: a network namespace made right after each cycle, as the engine's pool refills"
        : "bench/floor/isotest-floor.c: the engine's isolation in ~300 lines of C, a fresh network namespace per cycle";

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
        info.ArgumentList.Add($"isotest-bench-floor-{Environment.ProcessId}{(netnsAhead ? "-ahead" : "")}");
        if (netnsAhead)
        {
            info.ArgumentList.Add("--netns-ahead");
        }

        _driver = Process.Start(info) ?? throw new PeerUnavailableException($"could not start {binary}");
        _driver.StandardInput.AutoFlush = true;
    }

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var driver = _driver ?? throw new InvalidOperationException("not prepared");
        await driver.StandardInput.WriteLineAsync("cycle".AsMemory(), cancellationToken);
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
