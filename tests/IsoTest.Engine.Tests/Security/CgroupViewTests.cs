using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// /sys/fs/cgroup inside shows the container's own cgroup, read-only, as Docker does: on cgroup v2 the
/// cgroup2 filesystem rooted at the container's cgroup namespace; on v1 a tmpfs holding one read-only
/// mount per hierarchy, each rooted at the container's group. Programs size themselves from it (the
/// JVM, .NET, PostgreSQL read memory.max / memory.limit_in_bytes), and no other container shows there.
/// </summary>
public sealed class CgroupViewTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    private static bool V2 => File.Exists("/sys/fs/cgroup/cgroup.controllers");

    [Fact]
    public async Task MemoryCap_IsVisibleInsideAtTheCgroupRoot()
    {
        var file = V2 ? "/sys/fs/cgroup/memory.max" : "/sys/fs/cgroup/memory/memory.limit_in_bytes";
        var spec = Specs.Shell($"cat {file}") with { Limits = new ResourceLimits(MemoryBytes: 96L << 20) };

        var result = await _engine.RunAsync(spec);

        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal($"{96L << 20}\n", result.Stdout);
    }

    [Fact]
    public async Task CgroupTree_ShowsOnlyTheContainerAndIsReadOnly()
    {
        var dir = V2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
        var limit = V2 ? "memory.max" : "memory.limit_in_bytes";
        await using var neighbour = await _engine.CreateAsync(Specs.Host("sleep", "60") with { Limits = new ResourceLimits(MemoryBytes: 64L << 20) });
        await neighbour.StartAsync();
        var spec = Specs.Shell(
            $"find {dir} -mindepth 1 -type d | wc -l; " +
            $"test -f {dir}/{limit} && echo present; " +
            "grep -vc ':/$' /proc/self/cgroup; " +
            $"echo 1 > {dir}/{limit} 2>/dev/null && echo wrote-limit; " +
            $"mkdir {dir}/escape 2>/dev/null && echo made-group; " +
            "grep ' /sys/fs/cgroup' /proc/self/mounts | cut -d' ' -f4 | grep -vc '^ro,'") with { Limits = new ResourceLimits(MemoryBytes: 64L << 20) };

        var result = await _engine.RunAsync(spec);

        var lines = result.Stdout.Split('\n');
        Assert.Equal("0", lines[0]);             // no child groups: neither the neighbour nor the engine's tree
        Assert.Equal("present", lines[1]);
        Assert.Equal("0", lines[2]);             // every hierarchy's root is the container's own group
        Assert.DoesNotContain("wrote-limit", result.Stdout);
        Assert.DoesNotContain("made-group", result.Stdout);
        Assert.Equal("0", lines[^2]);            // every mount under /sys/fs/cgroup is read-only (tmpfs included)
    }
}
