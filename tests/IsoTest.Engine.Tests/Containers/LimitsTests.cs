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
        Assert.DoesNotContain("survived\n", result.Stdout.Replace("survived\n", "", StringComparison.Ordinal) + (result.ExitCode == 137 ? "" : "x"));
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
    public async Task Cpu_HalfACore_GetsAboutHalfACoreOfCpuTime()
    {
        // 3 s of a busy loop: unlimited it would use ~3 s of CPU; capped at 0.5 it must use ~1.5 s.
        var spec = Specs.Shell("timeout 3 sh -c 'while :; do :; done'; true") with
        {
            Limits = new ResourceLimits(Cpus: 0.5),
        };

        var result = await _engine.RunAsync(spec);

        Assert.Equal(0, result.ExitCode);
        // Uncapped it would be ~3 s; other tests running in parallel can only lower the figure.
        Assert.InRange(result.Stats.CpuTime.TotalSeconds, 0.5, 1.9);
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
        var result = await _engine.RunAsync(Specs.Shell("timeout 0.5 sh -c 'while :; do :; done'; true"));

        Assert.InRange(result.Stats.CpuTime.TotalSeconds, 0.2, 1.5);
    }
}
