using IsoTest.Engine.RootFs;
using IsoTest.Engine.Tests.Support;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.RootFs;

/// <summary>
/// Rootless with subordinate ranges, the host root's mirror is made ahead by the engine's maker and attached by the
/// next start (RootFs/HostMirrors.cs, native/rootfs.c <c>mirror_main</c>). A container can tell which it got: the
/// maker names its overlays' upper dirs from u100000 on, a container's own init from u0, and an overlay's options in
/// /proc/self/mountinfo name its upper dir. Each tree serves one container: what one writes no other sees, and the
/// host sees none of it.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class HostMirrorsTests
{
    private const string Maker = "isotest-mirror";
    private const string MadeAhead = "upperdir=/tmp/u1000";
    private const string UpperDirs = "grep -o 'upperdir=/tmp/u[0-9]*' /proc/self/mountinfo | sort -u | tr '\\n' ' '";

    [Theory]
    [InlineData(new string[0], true)]
    [InlineData(new[] { "/data" }, true)]
    [InlineData(new[] { "/tmp/x/y", "/run/a", "/dev/shm/z", "/proc/k" }, true)]
    [InlineData(new[] { "/etc/hosts" }, false)]
    [InlineData(new[] { "/data", "/var/lib/postgresql/data" }, false)]
    [InlineData(new[] { "/data/" }, false)] // the agent's prefix test sees a directory /data with a target below it
    public void Fits_OnlyTargetsDirectlyInRootOrInTheContainersOwnDirectories(string[] targets, bool fits) =>
        Assert.Equal(fits, HostMirrors.Fits(targets));

    [RootlessOnlyFact]
    public async Task HostRoot_StartsTakeTheMirrorMadeAhead_AndEachKeepsItsWritesToItself()
    {
        await using var engine = new EngineBackend();
        const string Write = "echo {0} > /usr/isotest-mirror-probe && mkdir /var/lib/isotest-mirror-probe-{0} && ls -d /var/lib/isotest-mirror-probe-* && ";
        var first = await RunMadeAheadAsync(engine, string.Format(System.Globalization.CultureInfo.InvariantCulture, Write, "a") + UpperDirs);
        var second = await RunMadeAheadAsync(engine, "test -e /usr/isotest-mirror-probe && echo leaked-usr; ls -d /var/lib/isotest-mirror-probe-* 2>/dev/null; " + string.Format(System.Globalization.CultureInfo.InvariantCulture, Write, "b") + UpperDirs);

        Assert.Contains("/var/lib/isotest-mirror-probe-a\n", first.Stdout, StringComparison.Ordinal);
        // The second container sees neither of the first one's writes, in an entry of / nor of /var/lib.
        Assert.DoesNotContain("leaked-usr", second.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("probe-a", second.Stdout, StringComparison.Ordinal);
        Assert.Contains("/var/lib/isotest-mirror-probe-b\n", second.Stdout, StringComparison.Ordinal);
        Assert.False(File.Exists("/usr/isotest-mirror-probe"));
        Assert.Empty(Directory.GetDirectories("/var/lib", "isotest-mirror-probe-*"));
    }

    [RootlessOnlyFact]
    public async Task HostRoot_WithAFileBelowAHostDirectory_BuildsItsOwnMirror()
    {
        await using var engine = new EngineBackend();
        // A first start has the maker make one; then one with a file in /etc must not take it (its /etc is mirrored
        // entry by entry so that the file can be made there, which the maker's tree does not do).
        await RunMadeAheadAsync(engine, UpperDirs);
        var run = await engine.RunAsync(Specs.Shell("cat /etc/isotest-mirror-probe.conf; " + UpperDirs) with
        {
            Files = [new FileCopySpec("/etc/isotest-mirror-probe.conf", "probe\n"u8.ToArray(), null)],
        });
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.StartsWith("probe\n", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(MadeAhead, run.Stdout, StringComparison.Ordinal);
        Assert.Contains("upperdir=/tmp/u0 ", run.Stdout, StringComparison.Ordinal);
    }

    [RootlessOnlyFact]
    public async Task HostRoot_ATreeOlderThanMaxAge_IsNotHandedOut()
    {
        // A tree shows the host's top-level entries as they were when it was made: an old one would hide what root
        // added since. The mirror's root directory is the maker's, its mtime when the maker made its last entry.
        await using var engine = new EngineBackend();
        await RunMadeAheadAsync(engine, UpperDirs); // the next tree is made now, then left waiting
        await Task.Delay(HostMirrors.MaxAge + TimeSpan.FromMilliseconds(500));
        var before = DateTimeOffset.UtcNow;
        var run = await engine.RunAsync(Specs.Shell("date -u +%s.%N -r /; " + UpperDirs));
        Assert.True(run.ExitCode == 0, run.Stderr);
        var madeAt = DateTimeOffset.FromUnixTimeMilliseconds((long)(double.Parse(run.Stdout.Split('\n')[0], System.Globalization.CultureInfo.InvariantCulture) * 1000));
        Assert.Contains(MadeAhead, run.Stdout, StringComparison.Ordinal); // a fresh one from the maker, not its own
        Assert.True(madeAt >= before.AddMilliseconds(-20), $"the tree was made at {madeAt:O}, before the start at {before:O}");
    }

    [RootlessOnlyFact]
    public async Task HostRoot_AnEmptyHostDirectory_IsAPlainDirectoryOfTheContainersLayer_WithTheHostsMode()
    {
        // Rootless, / is mirrored (it always holds /proc, /sys, /dev): an empty entry of it (Debian has /srv and /media)
        // is a directory on the mirror's tmpfs, not an overlay: same mode, writable as an overlay root was, the host
        // untouched. A world-writable one keeps its overlay (what the host puts there later must show).
        var empty = Directory.GetDirectories("/").FirstOrDefault(d =>
            d is not ("/proc" or "/sys" or "/dev" or "/tmp" or "/run") && !File.GetUnixFileMode(d).HasFlag(UnixFileMode.OtherWrite)
            && new DirectoryInfo(d).LinkTarget is null && IsEmptyAndReadable(d));
        Assert.True(empty is not null, "this host has no empty directory in / (Debian has /srv and /media)");
        var mode = Convert.ToString((int)File.GetUnixFileMode(empty), 8);
        await using var engine = new EngineBackend();
        var run = await engine.RunAsync(Specs.Shell(
            $"stat -c %a {empty}; grep -c ' {empty} ' /proc/self/mountinfo; touch {empty}/isotest-mirror-probe && ls {empty}"));
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal($"{mode}\n0\nisotest-mirror-probe\n", run.Stdout);
        Assert.Empty(Directory.GetFileSystemEntries(empty));
    }

    private static bool IsEmptyAndReadable(string dir)
    {
        try
        {
            return Directory.GetFileSystemEntries(dir).Length == 0;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    [RootlessOnlyFact]
    public async Task Dispose_EndsTheMaker_AndLeavesNoAgentBehind()
    {
        var engine = new EngineBackend();
        await RunMadeAheadAsync(engine, UpperDirs);
        var maker = Assert.Single(Leaks.AgentProcessesOf(Environment.ProcessId, Maker)); // waiting for the next `make`
        await engine.DisposeAsync();
        Assert.True(await Leaks.AllGoneAsync([maker]), $"maker {maker} outlived its engine");
        Assert.Empty(Leaks.AgentProcessesOf(Environment.ProcessId, Maker));
        Assert.Empty(Leaks.AgentProcessesOf(Environment.ProcessId));
    }

    /// <summary>
    /// Runs <paramref name="script"/> in host-root containers until one took a mirror made ahead (the maker builds it
    /// while the previous container runs: the first start of an engine builds its own, and a start never waits).
    /// </summary>
    private static async Task<RunResult> RunMadeAheadAsync(EngineBackend engine, string script)
    {
        for (int attempt = 0; ; attempt++)
        {
            var run = await engine.RunAsync(Specs.Shell(script));
            Assert.True(run.ExitCode == 0, $"{run.Stdout}\n{run.Stderr}");
            if (run.Stdout.Contains(MadeAhead, StringComparison.Ordinal))
            {
                return run;
            }

            Assert.True(attempt < 20, $"no start took a mirror made ahead in 20 attempts; the last saw: {run.Stdout}");
            await Task.Delay(TimeSpan.FromMilliseconds(100));
        }
    }
}
