using IsoTest.Engine.Native;
using IsoTest.Engine.Process;
using IsoTest.Engine.RootFs;
using IsoTest.Engine.Tests.Support;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.RootFs;

/// <summary>
/// Rootless with subordinate ranges, the host root's mirror is made ahead by the engine's maker, in a mount namespace
/// the next start's init joins (RootFs/HostMirrors.cs, native/rootfs.c <c>mirror_main</c>). A container can tell which
/// it got: the maker's staging is the engine's directory's <c>stage</c> and it names its overlays' upper dirs from
/// u100000 on, a container's own init stages on /tmp from u0, and an overlay's options in /proc/self/mountinfo name its
/// upper dir. Each namespace serves one container: what one writes no other sees, and the host sees none of it.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class HostMirrorsTests
{
    private const string Maker = "isotest-mirror";
    // The maker's overlays have their upper dirs on its staging in the engine's directory, from u100000; a container's
    // own on /tmp, from u0.
    private const string MadeAhead = "/stage/u1000";
    private const string UpperDirs = "grep -o 'upperdir=[^,]*/u[0-9]*' /proc/self/mountinfo | sort -u | tr '\\n' ' '";

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
        // An entry of / (always mirrored: / holds /proc), and a directory made in /var/lib where the host's mounts have
        // the mirror split it too (a docker host), else in / (the v2 guest: nothing below /var holds a mount).
        var deep = HostMountPlan.ForThisProcess().Contains("/var/lib") ? "/var/lib" : "";
        var write = "echo {0} > /usr/isotest-mirror-probe && mkdir " + deep + "/isotest-mirror-probe-{0} && ls -d " + deep + "/isotest-mirror-probe-* && ";
        var first = await RunMadeAheadAsync(engine, string.Format(System.Globalization.CultureInfo.InvariantCulture, write, "a") + UpperDirs);
        var second = await RunMadeAheadAsync(engine, "test -e /usr/isotest-mirror-probe && echo leaked-usr; ls -d " + deep + "/isotest-mirror-probe-* 2>/dev/null; " + string.Format(System.Globalization.CultureInfo.InvariantCulture, write, "b") + UpperDirs);

        Assert.Contains(deep + "/isotest-mirror-probe-a\n", first.Stdout, StringComparison.Ordinal);
        // The second container sees neither of the first one's writes, in an entry of / nor one level down.
        Assert.DoesNotContain("leaked-usr", second.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("probe-a", second.Stdout, StringComparison.Ordinal);
        Assert.Contains(deep + "/isotest-mirror-probe-b\n", second.Stdout, StringComparison.Ordinal);
        Assert.False(File.Exists("/usr/isotest-mirror-probe"));
        Assert.Empty(Directory.GetDirectories(deep.Length == 0 ? "/" : deep, "isotest-mirror-probe-*"));
    }

    [RootlessOnlyFact]
    public async Task WithoutSubordinateRanges_TheMirrorIsMadeAheadToo_InTheSharedOneIdNamespace()
    {
        // Without ranges the engine's shared user namespace maps the caller alone (its maker writes the maps itself), and
        // the maker works in it as with ranges: what one container writes stays its own, the host sees none of it.
        using var ids = new NoSubordinateIds();
        await using var engine = new EngineBackend(null, null, null, null, ids.Files);
        Assert.NotNull(engine.SubordinateIdsMissing);
        var first = await RunMadeAheadAsync(engine, "cat /proc/self/uid_map /proc/self/setgroups; echo a > /usr/isotest-mirror-probe && " + UpperDirs);
        var second = await RunMadeAheadAsync(engine, "test -e /usr/isotest-mirror-probe && echo leaked-usr; cat /proc/self/uid_map; " + UpperDirs);
        Assert.StartsWith($"0 {Credentials.EffectiveUid} 1\ndeny\n", Normalized(first.Stdout), StringComparison.Ordinal);
        Assert.StartsWith($"0 {Credentials.EffectiveUid} 1\n", Normalized(second.Stdout), StringComparison.Ordinal);
        Assert.DoesNotContain("leaked-usr", second.Stdout, StringComparison.Ordinal);
        Assert.False(File.Exists("/usr/isotest-mirror-probe"));
    }

    /// <summary>/proc/self/uid_map pads its columns with spaces: one space between fields.</summary>
    private static string Normalized(string text) =>
        string.Join('\n', text.Split('\n').Select(line => string.Join(' ', line.Split(' ', StringSplitOptions.RemoveEmptyEntries))));

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
    public async Task HostRoot_TheMakerMakesNothingWhileAStartIsInFlight()
    {
        // The mirror's root directory's mtime is when the maker made the tree (see the MaxAge test; the kernel's coarse
        // clock, a few ms). A first start has the maker spawned and its stock filled once it ended. Then a slow start:
        // a 192 MiB file its agent copies in before `created` keeps it in flight for 100 ms or more (64 MiB took
        // 49 ms once in CI, too short a window to mean anything). The trees the next
        // two starts get were made before that start or after it ended, never while it ran (the maker used to make the
        // next tree right when a start took one: 10-35 ms into this window, measured).
        await using var engine = new EngineBackend();
        await RunMadeAheadAsync(engine, UpperDirs);
        await Task.Delay(TimeSpan.FromMilliseconds(100));
        var big = Path.Combine(Path.GetTempPath(), $"isotest-mirror-slow-{Guid.NewGuid():N}");
        try
        {
            await File.WriteAllBytesAsync(big, new byte[192 << 20]);
            var began = DateTimeOffset.UtcNow;
            await using (var slow = await ((ICreateStartedBackend)engine).CreateStartedAsync(Specs.Shell("sleep 60") with { Files = [new FileCopySpec("/isotest-mirror-slow", null, big)] }, CancellationToken.None))
            {
                var started = DateTimeOffset.UtcNow;
                Assert.True(started - began > TimeSpan.FromMilliseconds(50), $"the slow start took only {(started - began).TotalMilliseconds} ms: no window to test in");
                // The start holds the maker off until its command runs, a moment before `started` was read: the last
                // fifth of the window is left out for that moment and the coarse clock.
                var (from, to) = (began, began + ((started - began) * 0.8));
                foreach (var next in new[] { await MadeAtAsync(engine), await MadeAtAsync(engine) })
                {
                    Assert.Contains(MadeAhead, next.Dirs, StringComparison.Ordinal);
                    Assert.False(next.MadeAt > from && next.MadeAt < to, $"a tree was made at {next.MadeAt:O}, while a start was in flight ({began:O} to {started:O})");
                }
            }
        }
        finally
        {
            File.Delete(big);
        }
    }

    private static async Task<(DateTimeOffset MadeAt, string Dirs)> MadeAtAsync(EngineBackend engine)
    {
        var run = await engine.RunAsync(Specs.Shell("date -u +%s.%N -r /; " + UpperDirs));
        Assert.True(run.ExitCode == 0, run.Stderr);
        var lines = run.Stdout.Split('\n');
        var madeAt = DateTimeOffset.FromUnixTimeMilliseconds((long)(double.Parse(lines[0], System.Globalization.CultureInfo.InvariantCulture) * 1000));
        return (madeAt, lines[1]);
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

    [RootlessOnlyFact]
    public async Task HostRoot_ADirectoryTheUserMayNotEnter_IsAPlainDirectoryOfTheContainersLayer_NothingOfTheHostsInIt()
    {
        // Root's /root (0700 on Debian): through an overlay nothing in it was reachable (overlayfs reads the lower
        // directory with the mounter's credentials, the user's), so it is a directory on the mirror's tmpfs like an
        // empty one: the host's mode, listed as empty instead of refused, writable at its top, the host untouched.
        Assert.False(MayEnter("/root"), "this test needs a directory in / the user may not enter: Debian's /root (0700 root)");
        var mode = Convert.ToString((int)File.GetUnixFileMode("/root"), 8);
        await using var engine = new EngineBackend();
        var run = await RunMadeAheadAsync(engine,
            "stat -c %a /root; grep -c ' /root ' /proc/self/mountinfo; ls -A /root; touch /root/isotest-mirror-probe && ls -A /root; " + UpperDirs);
        Assert.StartsWith($"{mode}\n0\nisotest-mirror-probe\n", run.Stdout, StringComparison.Ordinal);
        // The container's own init builds it the same way (a file below /etc makes it build its own mirror).
        var own = await engine.RunAsync(Specs.Shell("grep -c ' /root ' /proc/self/mountinfo; ls -A /root") with
        {
            Files = [new FileCopySpec("/etc/isotest-mirror-probe.conf", "probe\n"u8.ToArray(), null)],
        });
        Assert.True(own.ExitCode == 0, own.Stderr);
        Assert.Equal("0\n", own.Stdout);
    }

    [RootlessOnlyFact]
    public async Task HostRoot_TreesNoContainerIdMayWriteIn_AreReadOnlyBindsOfTheHosts_TheOthersOverlays()
    {
        // A split directory's entries (/var/cache, /var/lib/dpkg: root's through and through) are read-only binds of the
        // host's tree, made ahead and by the container's own init alike; /var/tmp (written by others) stays an overlay
        // whose writes are the container's. The trees are the engine's own finding for this host and user.
        var plan = HostMountPlan.ForThisProcess();
        var readOnly = HostReadOnlyTrees.For(plan, HostWriters.ForCaller(SubordinateIds.ForThisProcess().Ids));
        Assert.True(plan.Contains("/var"), "this test needs a host where /var holds a mount (CI's: dockerd's /var/lib/docker)");
        Assert.Contains("/var/cache", readOnly); // root's on Debian, nothing in it for others to write
        Assert.DoesNotContain("/var/tmp", readOnly);
        const string probe = "/var/cache";
        var script = "awk '{ for (i = 7; $i != \"-\"; i++) ; print $5, $6, $(i + 1) }' /proc/self/mountinfo; echo listing; ls -A " + probe + "; echo writes; " +
                     $"touch {probe}/isotest-mirror-probe 2>&1; echo in-var-tmp > /var/tmp/isotest-mirror-probe && cat /var/tmp/isotest-mirror-probe; ";
        await using var engine = new EngineBackend();
        var ahead = await RunMadeAheadAsync(engine, script + UpperDirs);
        var own = await engine.RunAsync(Specs.Shell(script) with
        {
            Files = [new FileCopySpec("/etc/isotest-mirror-probe.conf", "probe\n"u8.ToArray(), null)], // builds its own mirror
        });
        Assert.True(own.ExitCode == 0, own.Stderr);

        foreach (var run in new[] { ahead.Stdout, own.Stdout })
        {
            var mounts = run[..run.IndexOf("listing\n", StringComparison.Ordinal)].Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => line.Split(' ')).GroupBy(f => f[0], StringComparer.Ordinal) // the topmost mount at a point counts
                .ToDictionary(g => g.Key, g => (Options: g.Last()[1], Type: g.Last()[2]), StringComparer.Ordinal);
            foreach (var tree in readOnly.Where(t => mounts.ContainsKey(t))) // an empty one is a plain directory: no mount
            {
                Assert.NotEqual("overlay", mounts[tree].Type);
                Assert.StartsWith("ro", mounts[tree].Options, StringComparison.Ordinal);
            }

            Assert.Equal("overlay", mounts["/var/tmp"].Type);
            var listing = run[(run.IndexOf("listing\n", StringComparison.Ordinal) + 8)..run.IndexOf("writes\n", StringComparison.Ordinal)];
            Assert.Equal(Directory.GetFileSystemEntries(probe).Select(Path.GetFileName).Order(StringComparer.Ordinal), listing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
            Assert.Contains("Read-only file system\nin-var-tmp\n", run, StringComparison.Ordinal); // touch's complaint, then /var/tmp's write
        }

        Assert.False(File.Exists("/var/tmp/isotest-mirror-probe"));
        Assert.Contains(readOnly, t => t.StartsWith("/var/lib/", StringComparison.Ordinal)); // /var/lib is split too: its entries alike
    }

    /// <summary>True when this user may enter <paramref name="dir"/> (test -x, which asks access(2)).</summary>
    private static bool MayEnter(string dir)
    {
        using var test = System.Diagnostics.Process.Start("test", ["-x", dir])!;
        test.WaitForExit();
        return test.ExitCode == 0;
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

    [RootlessOnlyFact]
    public async Task TheMakerKeepsNothingMounted_EachNamespaceItMadeIsTheContainers()
    {
        // The maker steps back into its base namespace after each make, so nothing it made stays in its own table: no
        // staging, no overlay of a mirror (it used to keep its copy of each tree and unmount eight at a time, freeing
        // ~240 overlays at once inside some start). Every container below saw the maker's overlays in its own table.
        await using var engine = new EngineBackend();
        for (var i = 0; i < 20; i++)
        {
            await RunMadeAheadAsync(engine, UpperDirs);
        }

        var maker = Assert.Single(Leaks.AgentProcessesOf(Environment.ProcessId, Maker));
        var table = File.ReadAllLines($"/proc/{maker}/mountinfo");
        Assert.DoesNotContain(table, line => line.Contains(MadeAhead, StringComparison.Ordinal));
        // mountinfo: the mount point is field 5.
        Assert.DoesNotContain(table, line => line.Split(' ')[4].EndsWith("/stage", StringComparison.Ordinal));
    }

    [RootlessOnlyFact]
    public async Task HostRoot_BindAndFileSourcesInTheTempDirectory_TakeTheMirrorMadeAhead_AndAreTheHosts()
    {
        // init opens a container's sources in the namespace it joins. The maker's staging there covers the engine's own
        // directory, not /tmp as init's own staging does: a bind and a copied file from the temp directory (where tests
        // keep them) are the host's.
        var dir = Directory.CreateTempSubdirectory("isotest-mirror-sources-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "probe"), "bound from the host\n");
            File.WriteAllText(Path.Combine(dir.FullName, "copied"), "copied from the host\n");
            await using var engine = new EngineBackend();
            await RunMadeAheadAsync(engine, UpperDirs);
            var run = await RunMadeAheadAsync(engine, "cat /data/probe /copied; " + UpperDirs, spec => spec with
            {
                Mounts = [new MountSpec(MountKind.Bind, dir.FullName, "/data", ReadOnly: true)],
                Files = [new FileCopySpec("/copied", null, Path.Combine(dir.FullName, "copied"))],
            });
            Assert.StartsWith("bound from the host\ncopied from the host\n", run.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [RootlessOnlyFact]
    public async Task TheMakerKeepsWhatItFoundOfADirectory_OnlyUntilTheDirectoryChanges()
    {
        // The maker remembers which host directories it mirrored as plain ones (empty, or shut to the user) and asks
        // again only when one's mtime or ctime moved. An empty directory that gets a file after the first mirror shows
        // it in every mirror made after that: as an overlay of the host's, not the empty directory of before. A real
        // maker in a user namespace of the test's, told that the test's directory in the user's home holds mounts
        // (submounts), so that it mirrors it entry by entry; each namespace is looked into with nsenter.
        using var holder = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("unshare", ["--user", "--map-root-user", "sh", "-c", "echo in; exec sleep 600"])
        {
            RedirectStandardOutput = true,
        })!;
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var dir = Directory.CreateDirectory(Path.Combine(home, $"isotest-mirror-plain-{Guid.NewGuid():N}"));
        var stage = Directory.CreateTempSubdirectory("isotest-mirror-stage-");
        try
        {
            Assert.Equal("in", holder.StandardOutput.ReadLine());
            Directory.CreateDirectory(Path.Combine(dir.FullName, "empty"));
            await Task.Delay(TimeSpan.FromMilliseconds(200)); // past the maker's 50 ms: its answer for "empty" is kept
            using var userns = File.OpenHandle($"/proc/{holder.Id}/ns/user");
            var mirrors = new HostMirrors(EngineLoop.Shared, AgentLocator.Find(), TimeProvider.System, Path.Combine(stage.FullName, "stage"));
            try
            {
                var maps = new IdMaps($"0 {Credentials.EffectiveUid} 1", $"0 {Credentials.EffectiveGid} 1");
                var chain = new List<string>();
                for (var d = dir.FullName; d != "/"; d = Path.GetDirectoryName(d)!)
                {
                    chain.Insert(0, d);
                }

                var empty = Path.Combine(dir.FullName, "empty");
                var look = $"ls -A {mirrors.Stage}/r{empty}; grep -c ' {mirrors.Stage}/r{empty} ' /proc/self/mountinfo; date +%s%N -r {mirrors.Stage}/r";
                using (var first = await mirrors.TakeAsync(maps, userns, 0, chain, [], []))
                {
                    Assert.NotNull(first);
                    var seen = Look(first!);
                    Assert.True(seen.Length == 2 && seen[0] == "0", string.Join(" / ", seen)); // nothing in it, and no mount: a plain directory of the mirror
                }

                File.WriteAllText(Path.Combine(empty, "new"), "x");
                var written = DateTimeOffset.UtcNow;
                // The next ones may have been made before the write (the maker keeps two ready): take them until one
                // was made after it (its root's mtime), which must show the file through an overlay.
                for (int attempt = 0; ; attempt++)
                {
                    Assert.True(attempt < 10, "no mirror made after the write in 10");
                    using var next = await mirrors.TakeAsync(maps, userns, 0, chain, [], []);
                    Assert.NotNull(next);
                    var seen = Look(next!);
                    var madeAt = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(seen[^1], System.Globalization.CultureInfo.InvariantCulture) / 1_000_000);
                    if (madeAt > written.AddMilliseconds(5)) // past the coarse clock's tick
                    {
                        Assert.Equal(["new", "1"], seen[..^1]);
                        break;
                    }
                }

                string[] Look(Microsoft.Win32.SafeHandles.SafeFileHandle mountNamespace)
                {
                    var fd = mountNamespace.DangerousGetHandle();
                    var nsenter = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("nsenter",
                        ["--preserve-credentials", $"--user=/proc/{holder.Id}/ns/user", $"--mount=/proc/{Environment.ProcessId}/fd/{fd}", "sh", "-c", look])
                    {
                        RedirectStandardOutput = true,
                        RedirectStandardError = true,
                    })!;
                    var output = nsenter.StandardOutput.ReadToEnd() + nsenter.StandardError.ReadToEnd();
                    nsenter.WaitForExit();
                    GC.KeepAlive(mountNamespace);
                    Assert.True(nsenter.ExitCode == 0, output); // the script's last command, date
                    return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                }
            }
            finally
            {
                mirrors.Dispose();
                await Namespaces.MountNamespaceRelease.DrainAsync(TimeSpan.FromSeconds(30));
            }
        }
        finally
        {
            holder.Kill();
            dir.Delete(recursive: true);
            stage.Delete(recursive: true);
        }
    }

    [RootlessOnlyFact]
    public async Task AMountPointChangedAtASource_TheContainerBuildsItsOwn_AndAFreshMakerServesTheNext()
    {
        // A maker's namespaces hold the host's mount table as it was when the maker started. A start whose bind source
        // lies at a mount point made since gets none (its init builds its own mirror in a fresh copy), the maker is
        // replaced, and the next start gets a namespace from the new one. The table is the test's; the namespaces real.
        using var holder = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("unshare", ["--user", "--map-root-user", "sh", "-c", "echo in; exec sleep 600"])
        {
            RedirectStandardOutput = true,
        })!;
        try
        {
            Assert.Equal("in", holder.StandardOutput.ReadLine());
            using var userns = File.OpenHandle($"/proc/{holder.Id}/ns/user");
            var stage = Directory.CreateTempSubdirectory("isotest-mirror-stage-");
            HashSet<string> table = ["21 /", "22 /proc"];
            var mirrors = new HostMirrors(EngineLoop.Shared, AgentLocator.Find(), TimeProvider.System, Path.Combine(stage.FullName, "stage"), () => new HashSet<string>(table));
            try
            {
                var maps = new IdMaps($"0 {Credentials.EffectiveUid} 1", $"0 {Credentials.EffectiveGid} 1");
                string[] sources = ["/mnt/fuse/data"];
                using (var first = await mirrors.TakeAsync(maps, userns, 0, [], [], sources))
                {
                    Assert.NotNull(first);
                }

                var maker = Assert.Single(Leaks.AgentProcessesOf(Environment.ProcessId, Maker));
                table.Add("40 /mnt/fuse"); // mounted since the maker started
                Assert.Null(await mirrors.TakeAsync(maps, userns, 0, [], [], sources));
                Assert.True(await Leaks.AllGoneAsync([maker]), $"the replaced maker {maker} did not end");
                // A source elsewhere would not have mattered; this one now meets a fresh maker with the table as it is.
                using (var next = await mirrors.TakeAsync(maps, userns, 0, [], [], sources))
                {
                    Assert.NotNull(next);
                }

                Assert.NotEqual(maker, Assert.Single(Leaks.AgentProcessesOf(Environment.ProcessId, Maker)));
                Assert.Equal(2, mirrors.Served);
            }
            finally
            {
                mirrors.Dispose();
                await Namespaces.MountNamespaceRelease.DrainAsync(TimeSpan.FromSeconds(30));
                stage.Delete(recursive: true);
            }
        }
        finally
        {
            holder.Kill();
        }
    }

    [Theory]
    [InlineData(new string[0], new string[0], true)]
    [InlineData(new[] { "/tmp/x/data" }, new string[0], true)]
    [InlineData(new[] { "/tmp/x/data" }, new[] { "/run/docker/netns/a", "/var/lib/docker/overlay2/b/merged" }, true)]
    [InlineData(new[] { "/mnt/fuse/data" }, new[] { "/mnt/fuse" }, false)] // below a mount made or removed since
    [InlineData(new[] { "/mnt/fuse" }, new[] { "/mnt/fuse" }, false)]
    [InlineData(new[] { "/mnt" }, new[] { "/mnt/fuse" }, false)] // a bind is recursive: it would show the mount
    [InlineData(new[] { "/mnt/fuse2" }, new[] { "/mnt/fuse" }, true)]
    [InlineData(new[] { "/e/stage/x" }, new string[0], false)] // the staging covers it there
    [InlineData(new[] { "/e/stage" }, new string[0], false)]
    [InlineData(new[] { "/e/staged/x" }, new string[0], true)]
    public void SourcesFit_NoneAtAMountPointChangedSince_NorUnderTheStaging(string[] sources, string[] changed, bool fits) =>
        Assert.Equal(fits, HostMirrors.SourcesFit(sources, changed, "/e/stage"));

    [Fact]
    public void ChangedPoints_AreTheMountsMadeOrRemoved_ByTheirIds()
    {
        const string Before = """
            21 1 0:20 / / rw - ext4 /dev/vda rw
            22 21 0:21 / /proc rw - proc proc rw
            30 21 0:30 / /mnt/old rw - tmpfs tmpfs rw
            31 21 0:31 / /srv/a\040b rw - tmpfs tmpfs rw
            """;
        // /mnt/old went, /mnt/new came, /srv/a b was unmounted and mounted again (a new id), / and /proc stayed.
        const string After = """
            21 1 0:20 / / rw - ext4 /dev/vda rw
            22 21 0:21 / /proc rw - proc proc rw
            40 21 0:40 / /mnt/new rw - tmpfs tmpfs rw
            41 21 0:41 / /srv/a\040b rw - tmpfs tmpfs rw
            """;
        var changed = HostMountPlan.ChangedPoints(HostMountPlan.Mounts(Before), HostMountPlan.Mounts(After)).Order(StringComparer.Ordinal);
        Assert.Equal(["/mnt/new", "/mnt/old", "/srv/a b"], changed);
    }

    /// <summary>
    /// Runs <paramref name="script"/> in host-root containers until one took a mirror made ahead (the first start of an
    /// engine spawns the maker and waits for its first tree; a start whose tree is not ready within MaxWait builds its own).
    /// </summary>
    private static async Task<RunResult> RunMadeAheadAsync(EngineBackend engine, string script, Func<ContainerSpec, ContainerSpec>? with = null)
    {
        for (int attempt = 0; ; attempt++)
        {
            var spec = Specs.Shell(script);
            var run = await engine.RunAsync(with is null ? spec : with(spec));
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
