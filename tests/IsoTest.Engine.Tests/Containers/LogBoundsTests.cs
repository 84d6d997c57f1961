using System.Diagnostics;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Containers;

/// <summary>
/// Issue 8 finding 5: whatever a container writes, the engine's memory for its logs stays bounded. Real containers
/// writing through the real sockets; the caps are ContainerLogs' (16 KiB lines, 16 MiB per container, 4096 unread
/// lines per follower).
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class LogBoundsTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    [Fact]
    public async Task LongLine_IsSplitAt16KiB_AsDockerDoes()
    {
        // 40,000 bytes and a newline, then exactly 16 KiB and a newline, then a short line with no newline at all.
        var result = await _engine.RunAsync(Specs.Shell(
            "head -c 40000 /dev/zero | tr '\\0' a; echo; head -c 16384 /dev/zero | tr '\\0' b; echo; printf end"));

        Assert.Equal(0, result.ExitCode);
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal([16384, 16384, 7232, 16384, 3], lines.Select(l => l.Length));
        Assert.Equal(new string('a', 40000), string.Concat(lines.Take(3)));
        Assert.Equal("end", lines[^1]);
    }

    [Fact]
    public async Task MultiByteCharacter_CutAt16KiB_IsKeptWhole()
    {
        // 16383 ASCII bytes, then a 3-byte character that straddles the split.
        var result = await _engine.RunAsync(Specs.Shell("head -c 16383 /dev/zero | tr '\\0' x; printf '\\342\\202\\254tail\\n'"));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(new string('x', 16383) + "€tail\n", result.Stdout.Replace("\n", "", StringComparison.Ordinal) + "\n");
        Assert.DoesNotContain('\uFFFD', result.Stdout);
    }

    [Fact]
    public async Task Flood_UnderMemoryCap_EngineRssStaysBounded_OutputStillReadable()
    {
        // The reproduction: 200 MB of one endless line under -m 16m pushed the engine to 830 MB.
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        GC.Collect();
        process.Refresh();
        var before = process.WorkingSet64;
        var peak = before;
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var spec = Specs.Shell("head -c 200000000 /dev/zero | tr '\\0' a; echo; echo last-line") with { Limits = new ResourceLimits(MemoryBytes: 16L << 20) };
        await using var container = await _engine.CreateAsync(spec, cts.Token);
        await container.StartAsync(cts.Token);
        var exit = container.WaitForExitAsync(cts.Token);
        while (!exit.IsCompleted)
        {
            process.Refresh();
            peak = Math.Max(peak, process.WorkingSet64);
            await Task.WhenAny(exit, Task.Delay(20, cts.Token));
        }

        Assert.Equal(0, await exit);
        var logs = container.GetLogs();
        Assert.Equal("last-line", logs[^1].Text);
        Assert.All(logs.SkipLast(1), l => Assert.True(l.Text.Length <= 16384));
        Assert.True(logs.Sum(l => (long)l.Text.Length * 2) <= 16L << 20, "buffered text over the 16 MiB cap");
        var growth = (peak - before) >> 20;
        Assert.True(growth < 100, $"the engine's RSS grew by {growth} MiB while the container wrote 200 MB");
    }

    [Fact]
    public async Task SlowFollower_LosesLinesWithAMarker_InsteadOfHoldingThemAll()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await using var container = await _engine.CreateAsync(Specs.Shell("echo first; sleep 0.3; seq 1 20000; echo last"), cts.Token);
        await container.StartAsync(cts.Token);
        await using var follow = container.FollowLogsAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await follow.MoveNextAsync());
        Assert.Equal("first", follow.Current.Text);

        // Do not read while the container writes 20,002 lines; then read everything.
        await container.WaitForExitAsync(cts.Token);
        var seen = new List<string>();
        while (await follow.MoveNextAsync())
        {
            seen.Add(follow.Current.Text);
        }

        Assert.InRange(seen.Count, 4000, 4200);
        var marker = Assert.Single(seen, l => l.StartsWith("[isotest: ", StringComparison.Ordinal));
        Assert.Contains("dropped", marker);
        Assert.Equal("1", seen[0]); // what fitted came in order
        Assert.Equal("last", container.GetLogs()[^1].Text); // the buffer itself kept the newest
    }
}
