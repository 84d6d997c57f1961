using IsoTest.TestSupport;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Containers;

/// <summary>Caps enforced by the kernel. Rootless runs need a delegated cgroup (see .ci/run).</summary>
public sealed class LimitsTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    [Fact]
    public async Task Memory_AllocatingPastTheCap_IsOomKilledAndReportedSo()
    {
        var spec = Specs.Shell("head -c 300m /dev/zero | tail; echo survived") with
        {
            Limits = new ResourceLimits(MemoryBytes: 32L << 20),
        };

        var result = await _engine.RunAsync(spec);

        Assert.True(result.OomKilled, $"not reported as OOM-killed; exit {result.ExitCode}, stderr {result.Stderr}");
        Assert.NotNull(result.Stats.PeakMemoryBytes);
        Assert.InRange(result.Stats.PeakMemoryBytes!.Value, 16L << 20, 33L << 20);
    }

    [Fact]
    public async Task Memory_KilledPayload_ExitCodeIs137()
    {
        // The payload itself is the memory hog, so its own death is the container's exit.
        var spec = Specs.Host("/bin/sh", "-c", "x=$(head -c 300m /dev/zero | tr '\\0' a); echo $x | wc -c") with
        {
            Limits = new ResourceLimits(MemoryBytes: 32L << 20),
        };

        var result = await _engine.RunAsync(spec);

        Assert.True(result.OomKilled);
        Assert.Equal(137, result.ExitCode);
    }

    [Fact]
    public async Task Cpu_HalfACore_ASecondOfCpuTakesAtLeastTwiceAsLong()
    {
        // A fixed amount of work, not a fixed wall time: other tests running in parallel can only make
        // the container slower, so both bounds hold on a loaded machine. Uncapped, 1 s of CPU takes
        // ~1.1 s; at half a core it needs 20 CFS periods of 100 ms (a partial first one: ≥ 1.85 s).
        var spec = Specs.Shell(CpuSpin.Script(ticks: 100)) with
        {
            Limits = new ResourceLimits(Cpus: 0.5),
        };

        var started = System.Diagnostics.Stopwatch.StartNew();
        var result = await _engine.RunAsync(spec);
        var lifetime = started.Elapsed.TotalSeconds;
        var wall = CpuSpin.WallSeconds(result.Stdout);

        Assert.Equal(0, result.ExitCode);
        Assert.True(wall >= 1.6, $"1 s of CPU at half a core took only {wall:F2} s: the cap is not enforced");
        // At most the container's whole life (its processes run one at a time; see the test below).
        Assert.InRange(result.Stats.CpuTime.TotalSeconds, 1.0, lifetime);
    }

    [Fact]
    public async Task Pids_ForkBombStopsAtTheCap()
    {
        // Each successful fork prints a line (echo is a shell builtin, so printing needs no fork).
        // dash gives up at the first refused fork, which is the cap at work.
        var spec = Specs.Shell("i=0; while [ $i -lt 200 ]; do sleep 5 & echo forked; i=$((i+1)); done") with
        {
            Limits = new ResourceLimits(Pids: 32),
        };

        var result = await _engine.RunAsync(spec);

        var forks = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        Assert.InRange(forks, 1, 31); // 32 minus the shell itself; never the 200 requested
        Assert.Contains("fork", result.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.NotEqual(0, result.ExitCode);
    }

    [Fact]
    public async Task Cpuset_PinsTheContainerToTheGivenCpus()
    {
        var result = await _engine.RunAsync(Specs.Shell("grep Cpus_allowed_list /proc/self/status") with
        {
            Limits = new ResourceLimits(CpusetCpus: "0"),
        });

        Assert.Equal("Cpus_allowed_list:\t0\n", result.Stdout);
    }

    [Fact]
    public async Task Stats_CpuTimeIsReportedWithoutACpuCap()
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var result = await _engine.RunAsync(Specs.Shell(CpuSpin.Script(ticks: 30)));
        var lifetime = started.Elapsed.TotalSeconds;

        Assert.Equal(0, result.ExitCode);
        Assert.True(CpuSpin.WallSeconds(result.Stdout) > 0);
        // The shell burnt 0.3 s itself (its own clock says so). The container's processes run one at a time (init
        // waits while the shell spins, the shell waits for each cat), so together they cannot burn more than the
        // container's whole life as this test saw it: the spin's own wall time is not that bound, as the shell's
        // start before it counts too (0.25 s under emulation on a loaded host).
        Assert.InRange(result.Stats.CpuTime.TotalSeconds, 0.3, lifetime);
    }
}
