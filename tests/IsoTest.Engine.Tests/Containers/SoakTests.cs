using System.Globalization;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Containers;

/// <summary>
/// The short version of bench/IsoTest.Reliability soak (10,000 cycles there): 300 create/start/exit/remove
/// cycles, and the engine's descriptors, threads, RSS, live managed heap, cgroup directories, mounts and state entries stay flat.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class SoakTests
{
    [Fact]
    public async Task ThreeHundredCycles_LeaveTheEngineFlat()
    {
        await using var engine = new EngineBackend();
        var spec = Specs.Host("/bin/true") with { Limits = new ResourceLimits(MemoryBytes: 64L << 20, Pids: 64) };
        async Task Cycles(int n)
        {
            for (var i = 0; i < n; i++)
            {
                await using var container = await engine.CreateAsync(spec);
                await container.StartAsync();
                Assert.Equal(0, await container.WaitForExitAsync());
            }
        }

        await Cycles(50); // warm: the thread pool, the netns pool, the JIT
        var before = Take(engine);
        await Cycles(150);
        var middle = Take(engine);
        await Cycles(150);
        var after = Take(engine);

        var samples = $"before {before}, after 150 {middle}, after 300 {after}";
        Assert.True(after.Fds - before.Fds <= 8, "descriptors grew: " + samples);
        Assert.True(after.Threads - before.Threads <= 8, "threads grew: " + samples);
        Assert.True(after.RssMiB - before.RssMiB <= 64, "RSS grew: " + samples);
        // Live objects after a full collection: RSS also holds what the GC keeps committed, this is only what is
        // reachable. 4 MiB over 300 cycles catches anything of ~14 KiB or more kept per container.
        Assert.True(after.HeapKiB - before.HeapKiB <= 4096, "managed heap grew: " + samples);
        Assert.True(after.CgroupDirs == before.CgroupDirs, "cgroup directories left: " + samples);
        Assert.True(after.Mounts == before.Mounts, "mounts left: " + samples);
        Assert.True(after.StateEntries == before.StateEntries, "state entries left: " + samples);
    }

    private sealed record Sample(int Fds, long Threads, long RssMiB, long HeapKiB, int CgroupDirs, int Mounts, int StateEntries)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture,
            $"fds {Fds} threads {Threads} rss {RssMiB} MiB heap {HeapKiB} KiB cgroups {CgroupDirs} mounts {Mounts} state {StateEntries}");
    }

    private static Sample Take(EngineBackend engine)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var status = File.ReadAllLines("/proc/self/status");
        long Field(string name) => long.Parse(status.Single(l => l.StartsWith(name + ":", StringComparison.Ordinal)).Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        var cgroups = Directory.GetDirectories("/sys/fs/cgroup")
            .Select(h => Path.Combine(h, global::IsoTest.Engine.Cgroups.CgroupDriver.ParentFromEnvironment(), engine.EngineId))
            .Where(Directory.Exists)
            .Sum(d => Directory.GetDirectories(d, "*", SearchOption.AllDirectories).Length);
        return new Sample(
            Directory.GetFiles("/proc/self/fd").Length,
            Field("Threads"),
            Field("VmRSS") / 1024,
            GC.GetTotalMemory(forceFullCollection: true) / 1024,
            cgroups,
            // Only the mounts that could be the engine's: the host's table also moves with other processes
            // (dockerd's containers, other test projects running in parallel), and the engine makes every
            // container mount inside the container's own mount namespace.
            File.ReadLines("/proc/self/mountinfo").Count(l => l.Contains("isotest", StringComparison.OrdinalIgnoreCase)),
            Directory.GetFileSystemEntries(engine.StateDirectory, "*", SearchOption.AllDirectories).Length);
    }
}
