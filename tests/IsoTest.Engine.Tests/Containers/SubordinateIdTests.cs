using IsoTest.Engine.Containers;
using IsoTest.Engine.Native;
using IsoTest.Engine.RootFs;
using IsoTest.Engine.Tests.Images;
using IsoTest.Engine.Tests.Support;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Containers;

/// <summary>
/// Rootless subordinate id ranges (/etc/subuid and /etc/subgid through newuidmap/newgidmap; .ci/setup.sh gives user
/// isotest ranges and a supplementary group, isotest-probe): the container's user namespace maps 0 to the caller and
/// the range above it, ids of the range can own files, and the caller's supplementary groups are gone inside (issue 8,
/// finding 9), on a private and on a rootless network's namespace alike. Without ranges the engine says so, naming the
/// file and the fix, and maps the caller only. As root the same probes see the initial namespace's map and no groups.
/// </summary>
public sealed class SubordinateIdTests : IClassFixture<EngineFixture>
{
    private const string Probe = "cat /proc/self/uid_map /proc/self/gid_map; id -G; mkdir -p /tmp/o && touch /tmp/o/f && chown 1234:4321 /tmp/o/f && stat -c '%u %g' /tmp/o/f";
    private readonly EngineBackend _engine;

    public SubordinateIdTests(EngineFixture fixture) => _engine = fixture.Engine;

    [Fact]
    public async Task UserNamespace_MapsTheCallerAsRootAndTheRangeAbove_AndDropsTheCallersGroups()
    {
        RequireSupplementaryGroup();
        var run = await _engine.RunAsync(Specs.Shell(Probe));
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal([.. ExpectedMaps(inHolder: false), "0", "1234 4321"], Rows(run.Stdout));

        // exec enters the same namespace through the agent: the same map, no groups either.
        await using var container = await _engine.CreateAsync(Specs.Host("sleep", "600"));
        await container.StartAsync();
        var exec = await container.ExecAsync(["sh", "-c", "cat /proc/self/uid_map; id -G"]);
        Assert.Equal(0, exec.ExitCode);
        Assert.Equal([.. ExpectedMaps(inHolder: false).Take(ExpectedMaps(inHolder: false).Length / 2), "0"], Rows(exec.Stdout));
    }

    [Fact]
    public async Task UserNamespace_OnARootlessNetwork_HasTheRangeToo()
    {
        RequireSupplementaryGroup();
        await using var network = await new NetworkBuilder().WithBackend(_engine).BuildAsync();
        var run = await _engine.RunAsync(Specs.Shell(Probe) with { Networks = [Network.Join(network)] });
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal([.. ExpectedMaps(inHolder: true), "0", "1234 4321"], Rows(run.Stdout));
    }

    [Fact]
    public async Task HostRoot_NonRootUser_KeepsTheCallersFilesAsTheUsers()
    {
        // The host's and directory roots map the container's user to the caller (its files are the caller's),
        // the ranges around it: a bind-mounted directory of the caller's stays writable for that user.
        var dir = Directory.CreateTempSubdirectory("isotest-subid-bind-");
        try
        {
            if (Specs.IsRoot)
            {
                Assert.Equal(0, HostCalls.Chown(dir.FullName, 1000, 1000));
            }

            var run = await _engine.RunAsync(Specs.Shell("stat -c '%u %g' /data && touch /data/x && id -u && id -G") with
            {
                User = "1000:1000",
                Mounts = [new MountSpec(MountKind.Bind, dir.FullName, "/data")],
            });
            Assert.True(run.ExitCode == 0, run.Stderr);
            Assert.Equal(["1000 1000", "1000", "1000"], Rows(run.Stdout));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task PrivateContainers_ShareTheEnginesUserNamespace_AndNoOtherNamespace()
    {
        // Rootless with ranges the engine maps one user namespace per distinct maps, once, and every private container
        // with those maps joins it (newuidmap/newgidmap run once, not per start); every other namespace is the
        // container's own. As root there is no user namespace: both are in the initial one.
        // Both alive at once: a namespace's inode number is reused once it is freed.
        const string Namespaces = "for n in user pid mnt net uts ipc cgroup; do readlink /proc/self/ns/$n; done";
        await using var first = await _engine.CreateAsync(Specs.Host("sleep", "600"));
        await first.StartAsync();
        var inFirst = await first.ExecAsync(["sh", "-c", Namespaces]);
        var second = await _engine.RunAsync(Specs.Shell(Namespaces));
        Assert.True(inFirst.ExitCode == 0 && second.ExitCode == 0, inFirst.Stderr + second.Stderr);
        var (a, b) = (Rows(inFirst.Stdout), Rows(second.Stdout));
        Assert.Equal(7, a.Length);
        Assert.Equal(a[0], b[0]);
        Assert.Equal(Specs.IsRoot, a[0] == File.ResolveLinkTarget("/proc/self/ns/user", false)!.ToString().Split('/').Last());
        Assert.All(Enumerable.Range(1, 6), i => Assert.NotEqual(a[i], b[i]));
    }

    [Fact]
    public async Task SharedUserNamespace_AnotherContainersProcessesAreOutOfReach()
    {
        // Root of the shared user namespace holds CAP_KILL there, which would reach every process owned by it that it
        // can name: kill -9 -1 from one container must still leave the other's payload running (sibling pid namespaces).
        await using var victim = await _engine.CreateAsync(Specs.Host("sleep", "600"));
        await victim.StartAsync();
        var attacker = await _engine.RunAsync(Specs.Shell("sleep 600 & kill -9 -1; wait; echo done"));
        Assert.True(attacker.ExitCode == 0, attacker.Stderr);
        Assert.Equal("done\n", attacker.Stdout); // its own sleep died (so the kill worked), then wait returned
        var alive = await victim.ExecAsync(["true"]);
        Assert.Equal(0, alive.ExitCode);
        Assert.Null(victim.ExitCode);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("1000:1000")]
    public async Task Files_OwnedByIdsOfTheRanges_HaveThoseOwnersInside_SpecFilesAndCopiesIn(string? user)
    {
        // As root every owner exists. Rootless with ranges every id they map does: init writes the spec's files from
        // inside the container, and a copy into a running one (docker cp) is given its owners by the owners tool in a
        // namespace with the container's maps. With a non-root user the caller is that user, so root's 0:0 needs the tool too.
        RequireRanges();
        var spec = Specs.Host("sleep", "600") with
        {
            User = user,
            Files = [new FileCopySpec("/etc/app/secret", "s"u8.ToArray(), null, 0x180, 999, 998), new FileCopySpec("/etc/app/plain", "p"u8.ToArray(), null)],
        };
        await using var container = await _engine.CreateAsync(spec);
        await container.StartAsync();
        var tar = new LayerBuilder().Dir("d", 0x1ED, 1234, 4321).File("d/f", "f", 0x1A4, 999, 998).File("d/root", "r").File("d/user", "u", 0x1A4, 1000, 1000).Tar();
        ((EngineContainer)container).CopyIn("/tmp", new MemoryStream(tar), CancellationToken.None);

        var exec = await container.ExecAsync(["stat", "-c", "%n %u %g %a", "/etc/app/secret", "/etc/app/plain", "/tmp/d", "/tmp/d/f", "/tmp/d/root", "/tmp/d/user"]);
        Assert.True(exec.ExitCode == 0, exec.Stderr);
        Assert.Equal(
            ["/etc/app/secret 999 998 600", "/etc/app/plain 0 0 644", "/tmp/d 1234 4321 755", "/tmp/d/f 999 998 644", "/tmp/d/root 0 0 644", "/tmp/d/user 1000 1000 644"],
            Rows(exec.Stdout));
    }

    [RootlessOnlyFact]
    public async Task Files_OwnedByAnIdBeyondTheRanges_AreRefusedNamingTheRanges_AndNothingIsWritten()
    {
        var ranges = RequireRanges()!;
        var beyond = ranges.UidCount + 10L;
        var refused = await Assert.ThrowsAsync<InvalidContainerSpecException>(() => _engine.CreateAsync(Specs.Host("true") with
        {
            Files = [new FileCopySpec("/etc/app/far", "x"u8.ToArray(), null, 0x1A4, (int)beyond, 0)],
        }));
        Assert.Contains($"file /etc/app/far is to be owned by {beyond}:0", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"maps only uids 0-{ranges.UidCount}", refused.Message, StringComparison.Ordinal);

        await using var container = await _engine.CreateAsync(Specs.Host("sleep", "600"));
        await container.StartAsync();
        var tar = new LayerBuilder().File("near", "n", 0x1A4, 999, 999).File("far", "f", 0x1A4, (int)beyond, 0).Tar();
        var copy = Assert.Throws<ContainerFileException>(() => ((EngineContainer)container).CopyIn("/tmp", new MemoryStream(tar), CancellationToken.None));
        Assert.Equal(ContainerFileProblem.BadOwner, copy.Problem);
        Assert.Contains($"/tmp/far is to be owned by {beyond}:0", copy.Message, StringComparison.Ordinal);
        var exec = await container.ExecAsync(["ls", "/tmp"]);
        Assert.DoesNotContain("near", exec.Stdout, StringComparison.Ordinal); // checked before a byte is written
    }

    [RootlessOnlyFact]
    public async Task CopyIn_WritesWhereTheContainersRootMay_AndIsDeniedNamingTheWaysOutWhereNoIdOfItsOwns()
    {
        // The copy is written as the container's root, in its user namespace. In the host's root a top-level entry
        // such as /etc is the container's (its overlay's upper directory): the copy lands there, in the container's
        // layer, as `touch` from inside would. /usr/lib is the host root's, which that namespace does not map: not even
        // the container's root may write there, and neither may the copy.
        await using var container = await _engine.CreateAsync(Specs.Host("sleep", "600"));
        await container.StartAsync();
        var tar = new LayerBuilder().File("isotest-copied", "x").Tar();
        ((EngineContainer)container).CopyIn("/etc", new MemoryStream(tar), CancellationToken.None);
        var inside = await container.ExecAsync(["sh", "-c", "cat /etc/isotest-copied; touch /usr/lib/isotest-probe 2>/dev/null || echo root-denied-too"]);
        Assert.Equal("xroot-denied-too\n", inside.Stdout);
        Assert.False(File.Exists("/etc/isotest-copied")); // the container's layer, not the host

        var copy = Assert.Throws<ContainerFileException>(() => ((EngineContainer)container).CopyIn("/usr/lib", new MemoryStream(tar), CancellationToken.None));
        Assert.Equal(ContainerFileProblem.Denied, copy.Problem);
        Assert.Contains("written as the container's root, in its user namespace", copy.Message, StringComparison.Ordinal);
        Assert.Contains("WithFile", copy.Message, StringComparison.Ordinal);
        Assert.False(File.Exists("/usr/lib/isotest-copied"));
    }

    [Fact]
    public async Task CopyInAndOut_OfADirectoryOnlyItsOwnerInsideMayEnter_WorkAsDockerCp()
    {
        // A server's data directory: uid 999's inside, mode 0700. Rootless that owner is a subordinate uid on the host,
        // whose directory the caller may not even enter; rootless Docker's daemon copies as root of the container's user
        // namespace, and so does the engine (the filer, native/filer.c). Out, the owners are the container's ids.
        RequireRanges();
        await using var container = await _engine.CreateAsync(Specs.Host("sleep", "600"));
        await container.StartAsync();
        var setup = await container.ExecAsync(["sh", "-c", "mkdir /tmp/data && echo old > /tmp/data/conf && chown -R 999:998 /tmp/data && chmod 700 /tmp/data"]);
        Assert.True(setup.ExitCode == 0, setup.Stderr);

        var tar = new LayerBuilder().File("conf", "new", 0x180, 999, 998).Dir("sub", 0x1C0, 999, 998).File("sub/root", "r").Tar();
        ((EngineContainer)container).CopyIn("/tmp/data", new MemoryStream(tar), CancellationToken.None);
        var exec = await container.ExecAsync(["sh", "-c", "stat -c '%n %u %g %a' /tmp/data /tmp/data/conf /tmp/data/sub /tmp/data/sub/root && cat /tmp/data/conf"]);
        Assert.True(exec.ExitCode == 0, exec.Stderr);
        Assert.Equal(["/tmp/data 999 998 700", "/tmp/data/conf 999 998 600", "/tmp/data/sub 999 998 700", "/tmp/data/sub/root 0 0 644", "new"], Rows(exec.Stdout));

        var archive = new MemoryStream();
        using (var root = ((EngineContainer)container).OpenRoot())
        {
            await ContainerFiles.ArchiveAsync(root, "/tmp/data", archive, CancellationToken.None);
        }

        archive.Position = 0;
        var entries = new List<string>();
        using var reader = new System.Formats.Tar.TarReader(archive);
        while (reader.GetNextEntry() is { } entry)
        {
            var content = entry.DataStream is { } data ? new StreamReader(data).ReadToEnd().Trim() : "-";
            entries.Add($"{entry.Name} {entry.Uid} {entry.Gid} {content}");
        }

        Assert.Equal(["data/ 999 998 -", "data/conf 999 998 new", "data/sub/ 999 998 -", "data/sub/root 0 0 r"], entries.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task CopyIn_WhileTheContainerSwapsItsTargetForASymlinkToAHostDirectory_NeverWritesOnTheHost()
    {
        // The filer runs in the host's mount namespace with the container's root as its only way in: every path is
        // resolved inside that root (RESOLVE_IN_ROOT), so a symlink the container swaps in mid-copy, pointing at a host
        // directory the caller owns (which the filer could write, were a path ever resolved on the host), leads to the
        // container's own view of that path. The host directory must stay empty.
        var hostDir = Directory.CreateTempSubdirectory("isotest-copy-race-");
        try
        {
            await using var container = await _engine.CreateAsync(Specs.Shell(
                $"while :; do rm -rf /tmp/d; mkdir /tmp/d; rm -rf /tmp/d; ln -s {hostDir.FullName} /tmp/d; done"));
            await container.StartAsync();
            var builder = new LayerBuilder().Dir("d");
            for (var i = 0; i < 40; i++)
            {
                builder.File($"d/f{i}", "x");
            }

            var tar = builder.Tar();
            for (var round = 0; round < 20; round++)
            {
                try
                {
                    ((EngineContainer)container).CopyIn("/tmp", new MemoryStream(tar), CancellationToken.None);
                }
                catch (ContainerFileException)
                {
                    // the container removed a directory under the copy: a failed copy is fine, an escaped one is not
                }
            }

            Assert.Empty(Directory.EnumerateFileSystemEntries(hostDir.FullName));
            Assert.True(container.ExitCode is null, "the swapping loop must still run, or the race was not run");
        }
        finally
        {
            hostDir.Delete(recursive: true);
        }
    }

    [RootlessOnlyFact]
    public async Task WithoutRanges_TheEngineSaysSoAndMapsTheCallerOnly()
    {
        using var ids = new NoSubordinateIds();
        await using var engine = new EngineBackend(null, null, null, null, ids.Files);
        Assert.NotNull(engine.SubordinateIdsMissing);
        Assert.Contains($"{ids.Path} has no range for user {Environment.UserName}", engine.SubordinateIdsMissing, StringComparison.Ordinal);
        Assert.Contains($"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {Environment.UserName}", engine.SubordinateIdsMissing, StringComparison.Ordinal);

        var run = await engine.RunAsync(Specs.Shell("cat /proc/self/uid_map; cat /proc/self/setgroups; id -G; chown 1234 /tmp 2>/dev/null || echo no-chown"));
        Assert.True(run.ExitCode == 0, run.Stderr);
        var rows = Rows(run.Stdout);
        Assert.Equal([$"0 {Credentials.EffectiveUid} 1", "deny"], rows[..2]);
        // The documented limitation (README "Rootless"): the caller's groups stay, as the overflow gid.
        Assert.Equal(HostSupplementaryGroups().Length > 0 ? "0 65534" : "0", rows[2]);
        Assert.Equal("no-chown", rows[3]);

        // Only the container user owns files: another owner is refused up front, naming the fix.
        var refused = await Assert.ThrowsAsync<InvalidContainerSpecException>(() => engine.CreateAsync(Specs.Host("true") with
        {
            Files = [new FileCopySpec("/etc/app/other", "x"u8.ToArray(), null, 0x1A4, 999, 999)],
        }));
        Assert.Contains("file /etc/app/other is to be owned by 999:999, but rootless containers without subordinate ids have only uid 0 and gid 0", refused.Message, StringComparison.Ordinal);
        Assert.Contains("/etc/subuid", refused.Message, StringComparison.Ordinal);
    }

    /// <summary>The maps the container should see: root's identity map, else the caller's ids as 0 and the ranges from 1.</summary>
    private static string[] ExpectedMaps(bool inHolder)
    {
        if (Specs.IsRoot)
        {
            return ["0 0 4294967295", "0 0 4294967295"];
        }

        var ranges = SubordinateIds.ForThisProcess().Ids;
        Assert.True(ranges is not null, $"user {Environment.UserName} has no subordinate ranges: {SubordinateIds.ForThisProcess().Missing} (.ci/setup.sh adds them for isotest)");
        // A network member's namespace is a child of the network holder's, which maps 0 to the caller and 1.. to the ranges.
        return inHolder
            ? ["0 0 1", $"1 1 {ranges.UidCount}", "0 0 1", $"1 1 {ranges.GidCount}"]
            : [$"0 {Credentials.EffectiveUid} 1", $"1 {ranges.UidStart} {ranges.UidCount}", $"0 {Credentials.EffectiveGid} 1", $"1 {ranges.GidStart} {ranges.GidCount}"];
    }

    /// <summary>Rootless, the ranges the owners probes need (null as root, where every id exists).</summary>
    private static SubordinateIds? RequireRanges()
    {
        if (Specs.IsRoot)
        {
            return null;
        }

        var lookup = SubordinateIds.ForThisProcess();
        Assert.True(lookup.Ids is not null, $"user {Environment.UserName} has no subordinate ranges: {lookup.Missing} (.ci/setup.sh adds them for isotest)");
        return lookup.Ids;
    }

    /// <summary>Rootless, the probe of dropped groups means something only if the caller has one to drop.</summary>
    private static void RequireSupplementaryGroup()
    {
        if (!Specs.IsRoot)
        {
            Assert.True(HostSupplementaryGroups().Length > 0, $"user {Environment.UserName} has no supplementary group to see dropped (.ci/setup.sh adds isotest to isotest-probe)");
        }
    }

    private static string[] HostSupplementaryGroups() =>
        [.. File.ReadAllLines("/proc/self/status").Single(l => l.StartsWith("Groups:", StringComparison.Ordinal))["Groups:".Length..]
            .Split(' ', '\t', StringSplitOptions.RemoveEmptyEntries).Where(g => g != Credentials.EffectiveGid.ToString(System.Globalization.CultureInfo.InvariantCulture))];

    private static string[] Rows(string text) =>
        [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries)))];
}
