using IsoTest.Engine.Containers;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Containers;

/// <summary>
/// Issue 8 finding 6: the state root is the engine's only; one planted by another user (a symlink to the victim's
/// files, a 0777 directory, a directory owned by someone else) is refused before the sweep can touch what it
/// points at. Root and rootless.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class StateDirectoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-statetest-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task MissingRoot_IsCreatedOwnerOnly_AndSoIsTheEngineDirectory()
    {
        var root = Path.Combine(_dir, "state");

        await using var engine = new EngineBackend(null, root, null);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(root));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(engine.StateDirectory));
    }

    [Fact]
    public async Task RootInTheTempDirectory_GoesWithItsLastEngine_NothingIsLeftInTmp()
    {
        // The rootless fallback /tmp/isotest-<uid> is such a root; this one has its own name so runs in parallel do not meet.
        var root = Path.Combine(Path.GetTempPath(), $"isotest-statetest-{Guid.NewGuid():N}");
        try
        {
            var first = new EngineBackend(null, root, null);
            var second = new EngineBackend(null, root, null);

            await first.DisposeAsync();
            Assert.True(Directory.Exists(root), "the root went while another engine still had its directory there");
            Assert.Equal([second.StateDirectory], Directory.GetFileSystemEntries(root));

            await second.DisposeAsync();
            Assert.False(Directory.Exists(root), $"{root} was left behind");
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    [Fact]
    public async Task RootElsewhere_StaysWhenItsEngineEnds()
    {
        var root = Path.Combine(_dir, "state");

        await new EngineBackend(null, root, null).DisposeAsync();

        Assert.True(Directory.Exists(root));
        Assert.Empty(Directory.GetFileSystemEntries(root));
    }

    [Fact]
    public void SymlinkedRoot_IsRefused_AndTheSweepNeverReachesItsTarget()
    {
        // The attack: /tmp/isotest-<uid> pre-created as a symlink to the victim's files, shaped like a dead engine's
        // directory (an unlocked lock file) so the sweep would delete it.
        var victim = Path.Combine(_dir, "victim-home");
        Directory.CreateDirectory(Path.Combine(victim, "deadbeef"));
        File.WriteAllText(Path.Combine(victim, "deadbeef", "lock"), "");
        File.WriteAllText(Path.Combine(victim, "deadbeef", "thesis.tex"), "precious");
        var root = Path.Combine(_dir, "isotest-planted");
        File.CreateSymbolicLink(root, victim);

        var ex = Assert.Throws<BackendUnavailableException>(() => new EngineBackend(null, root, null));

        Assert.Contains(root, ex.Message);
        Assert.Contains("is a symlink", ex.Message);
        Assert.Contains("ISOTEST_STATE_DIR", ex.Message);
        Assert.Equal("precious", File.ReadAllText(Path.Combine(victim, "deadbeef", "thesis.tex")));
    }

    [Theory]
    [InlineData(0b111_111_111, "writable by others")]
    [InlineData(0b111_111_000, "writable by its group")]
    public void GroupOrWorldWritableRoot_IsRefused(int mode, string expected)
    {
        var root = Path.Combine(_dir, "open");
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, (UnixFileMode)mode);

        var ex = Assert.Throws<BackendUnavailableException>(() => new EngineBackend(null, root, null));

        Assert.Contains(root, ex.Message);
        Assert.Contains(expected, ex.Message);
        Assert.Contains($"chmod 700 {root}", ex.Message);
    }

    [Fact]
    public void RootOwnedByAnotherUser_IsRefused()
    {
        // As root: a directory handed to the isotest user; rootless: one of root's.
        string root;
        if (Specs.IsRoot)
        {
            root = Path.Combine(_dir, "theirs");
            Directory.CreateDirectory(root);
            File.SetUnixFileMode(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            using var chown = System.Diagnostics.Process.Start("chown", ["1001", root])!;
            chown.WaitForExit();
            Assert.Equal(0, chown.ExitCode);
        }
        else
        {
            root = "/etc";
        }

        var ex = Assert.Throws<BackendUnavailableException>(() => new EngineBackend(null, root, null));

        Assert.Contains(root, ex.Message);
        Assert.Contains("not by this user", ex.Message);
    }

    [Fact]
    public async Task StagedFiles_AreOwnerOnly_NeverWrittenThroughASymlink()
    {
        // Content for WithFile is staged in the engine's directory until the agent has copied it (then removed).
        var path = Path.Combine(_dir, "c1-file0");
        EngineState.WritePrivateFile(path, "s3cret"u8);
        var link = Path.Combine(_dir, "c2-file0");
        var target = Path.Combine(_dir, "elsewhere");
        File.CreateSymbolicLink(link, target);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Throws<IOException>(() => EngineState.WritePrivateFile(link, "x"u8));
        Assert.False(File.Exists(target));

        // And the content still reaches the container with the mode asked for.
        var root = Path.Combine(_dir, "state");
        await using var engine = new EngineBackend(null, root, null);
        var spec = new ContainerBuilder().FromHost().WithCommand("stat", "-c", "%a %s", "/tmp/secret")
            .WithFile("/tmp/secret", "s3cret", UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead).Build();
        var result = await engine.RunAsync(spec);
        Assert.Equal("444 6\n", result.Stdout);
        Assert.Empty(Directory.GetFiles(engine.StateDirectory, "*-file*"));
    }

    [Fact]
    public async Task AnEngineStartingWhileAnotherProcessSweeps_IsNeverTakenForDead()
    {
        // Test projects start engines in parallel on one state root, and each start sweeps the directories of dead
        // engines: a lock file seen unlocked for a moment (between open and flock) once had a live engine's directory
        // deleted under it. One thread here starts and ends engines, another sweeps as a starting engine does.
        // A count of starts, not a time: under a loaded suite 2 s held fewer than 100 starts once, and a test must not
        // assert on speed. The sweeper runs until the starts are done (or a minute, should starts hang).
        const int Starts = 1000;
        var root = EngineState.EnsureRoot(Path.Combine(_dir, "state"));
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var sweeper = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (var dead in EngineState.DeadEngines(root))
                {
                    // An engine that is ending can be seen dead here a moment before its directory is gone: fine.
                    EngineState.RemoveDirectory(root, dead);
                }
            }
        });

        var started = 0;
        while (started < Starts && !stop.IsCancellationRequested)
        {
            using var state = EngineState.Acquire(root); // the old lock file made this throw at times (the sweep held it)
            started++;
            Assert.True(File.Exists(EngineState.LockPath(state.Directory)), $"engine {state.EngineId} has no lock file");
            await Task.Yield();
            Assert.True(Directory.Exists(state.Directory), $"the sweep deleted the directory of live engine {state.EngineId} (after {started} starts)");
        }

        await stop.CancelAsync();
        await sweeper;
        Assert.True(started == Starts, $"only {started} of {Starts} engines started within a minute");
        Assert.Empty(Directory.GetFileSystemEntries(root));
    }
}
