using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Containers;

public sealed class LifecycleTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    [Fact]
    public async Task Run_ExitCodeAndBothStreamsAreReported()
    {
        var result = await _engine.RunAsync(Specs.Shell("echo out; echo err >&2; exit 7"));

        Assert.Equal(7, result.ExitCode);
        Assert.Equal("out\n", result.Stdout);
        Assert.Equal("err\n", result.Stderr);
    }

    [Fact]
    public async Task Run_KilledBySignal_ExitCodeIs128PlusSignal()
    {
        var result = await _engine.RunAsync(Specs.Shell("kill -TERM $$; sleep 5"));

        Assert.Equal(128 + 15, result.ExitCode);
    }

    [Fact]
    public async Task States_CreatedRunningExitedRemoved()
    {
        var container = await _engine.CreateAsync(Specs.Shell("sleep 0.2"));
        Assert.Equal(ContainerState.Created, container.State);

        await container.StartAsync();
        Assert.Equal(ContainerState.Running, container.State);

        Assert.Equal(0, await container.WaitForExitAsync());
        Assert.Equal(ContainerState.Exited, container.State);

        await container.DisposeAsync();
        Assert.Equal(ContainerState.Removed, container.State);
        await container.DisposeAsync(); // idempotent
    }

    [Fact]
    public async Task Env_WorkdirAndUserReachThePayload()
    {
        var spec = Specs.Shell("echo $GREETING; pwd; id -u; id -g") with
        {
            Environment = new Dictionary<string, string> { ["GREETING"] = "hello" },
            WorkingDirectory = "/usr/share",
            User = "65534:65534",
        };

        var result = await _engine.RunAsync(spec);

        Assert.Equal("hello\n/usr/share\n65534\n65534\n", result.Stdout);
    }

    [Fact]
    public async Task Environment_DockersDefaultPathAndHostnameUnlessTheSpecSetsThem()
    {
        // /usr/bin/env, not the shell's builtins: what the payload itself was given.
        var defaults = await _engine.RunAsync(Specs.Host("/usr/bin/env") with { Hostname = "box1" });
        var own = await _engine.RunAsync(Specs.Host("/usr/bin/env") with
        {
            Environment = new Dictionary<string, string> { ["PATH"] = "/opt/bin", ["HOSTNAME"] = "mine" },
        });

        Assert.Equal(["HOME=/root", "HOSTNAME=box1", $"PATH={ContainerSpec.DefaultPath}"], defaults.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Equal(["HOME=/root", "HOSTNAME=mine", "PATH=/opt/bin"], own.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Exec_SeesTheContainersEnvironment()
    {
        await using var container = await _engine.CreateAsync(Specs.Host("sleep", "30") with
        {
            Environment = new Dictionary<string, string> { ["GREETING"] = "hi" },
        });
        await container.StartAsync();

        var result = await container.ExecAsync(["/usr/bin/env"]);

        Assert.Equal(["GREETING=hi", "HOME=/root", $"HOSTNAME={container.Id[..12]}", $"PATH={ContainerSpec.DefaultPath}"], result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task WaitForExit_CompletesExactlyWhenTheStateSaysExited_WithTheLogsDrained()
    {
        await using var container = await _engine.CreateAsync(Specs.Shell("echo last words; exit 3"));
        await container.StartAsync();

        var seen = await container.WaitForExitAsync().ContinueWith(
            t => (t.Result, container.State, container.ExitCode, Logs: container.GetLogs().Select(l => l.Text).ToList()),
            TaskContinuationOptions.ExecuteSynchronously);

        Assert.Equal((3, ContainerState.Exited, (int?)3), (seen.Result, seen.State, seen.ExitCode));
        Assert.Equal(["last words"], seen.Logs);
    }

    [Fact]
    public async Task Start_TwiceAtOnce_OneStartsAndTheOtherIsRefused()
    {
        await using var container = await _engine.CreateAsync(Specs.Host("sleep", "30"));

        var starts = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            try
            {
                await container.StartAsync();
                return null;
            }
            catch (InvalidOperationException e)
            {
                return e;
            }
        })));

        Assert.Single(starts, e => e is null);
        Assert.Contains("only a created or exited container can be started", Assert.Single(starts, e => e is not null)!.Message);
        Assert.Equal(ContainerState.Running, container.State);
    }

    [Fact]
    public async Task Start_AfterStop_RunsAgainWithTheSameIdentityAndKeepsEarlierLogs()
    {
        var spec = Specs.Shell("trap 'exit 0' TERM; echo up; while :; do sleep 0.05; done") with { Ports = [8080] };
        await using var container = await _engine.CreateAsync(spec);
        await container.StartAsync();
        await WaitForLineAsync(container, "up");
        var port = container.GetEndpoint(8080).Port;
        await container.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(ContainerState.Exited, container.State);

        await container.StartAsync();
        await WaitForLogCountAsync(container, "up", 2);

        Assert.Equal(ContainerState.Running, container.State);
        Assert.Null(container.ExitCode);
        Assert.Equal(port, container.GetEndpoint(8080).Port);
        Assert.Equal(0, (await container.ExecAsync(["true"])).ExitCode);
        await container.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, await container.WaitForExitAsync());
        Assert.Equal(["up", "up"], container.GetLogs().Select(l => l.Text));
    }

    private static async Task WaitForLogCountAsync(IContainer container, string text, int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (container.GetLogs().Count(l => l.Text == text) < count)
        {
            await Task.Delay(5, cts.Token);
        }
    }

    [Fact]
    public async Task User_NameIsResolvedFromTheRootsPasswd()
    {
        var result = await _engine.RunAsync(Specs.Shell("id -un") with { User = "nobody" });

        Assert.Equal("nobody\n", result.Stdout);
    }

    [Fact]
    public async Task Stop_SigtermEndsACooperativeProcess()
    {
        await using var container = await _engine.CreateAsync(Specs.Shell("trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done"));
        await container.StartAsync();
        await WaitForLineAsync(container, "up");

        await container.StopAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(0, container.ExitCode);
        Assert.Contains(container.GetLogs(), l => l.Text == "bye");
    }

    [Fact]
    public async Task Stop_SigkillAfterTheGracePeriod()
    {
        await using var container = await _engine.CreateAsync(Specs.Shell("trap '' TERM; echo up; while :; do sleep 0.05; done"));
        await container.StartAsync();
        await WaitForLineAsync(container, "up");

        await container.StopAsync(TimeSpan.FromMilliseconds(200));

        Assert.Equal(137, container.ExitCode);
    }

    [Fact]
    public async Task Exec_RunsInsideWithExitCodeAndOutput()
    {
        await using var container = await _engine.CreateAsync(Specs.Shell("echo $$ > /tmp/main.pid; sleep 30") with { Hostname = "exec-box" });
        await container.StartAsync();

        // The exec may come before the payload's shell has run its first line: it waits for the file.
        var result = await container.ExecAsync(["/bin/sh", "-c", "while [ ! -s /tmp/main.pid ]; do sleep 0.01; done; hostname; cat /tmp/main.pid; echo oops >&2; exit 4"]);

        Assert.Equal(4, result.ExitCode);
        Assert.Equal("exec-box\n2\n", result.Stdout); // same UTS namespace and the same private /tmp
        Assert.Equal("oops\n", result.Stderr);
    }

    [Fact]
    public async Task Exec_MissingBinary_TypedErrorNamesPathAndErrno()
    {
        await using var container = await _engine.CreateAsync(Specs.Host("sleep", "30"));
        await container.StartAsync();

        var error = await Assert.ThrowsAsync<ExecFailedException>(() => container.ExecAsync(["/no/such/tool"]));

        Assert.Equal(ExecFailure.NotFound, error.Reason);
        Assert.Equal("/no/such/tool", error.Path);
        Assert.Equal(2, error.Errno);
    }

    [Fact]
    public async Task Start_MissingBinary_ExecFailedNotFound()
    {
        await using var container = await _engine.CreateAsync(Specs.Host("isotest-no-such-program"));

        var error = await Assert.ThrowsAsync<ExecFailedException>(() => container.StartAsync());

        Assert.Equal(ExecFailure.NotFound, error.Reason);
        Assert.Equal("isotest-no-such-program", error.Path);
        Assert.Contains("isotest-no-such-program", error.Message);
    }

    [Fact]
    public async Task OneStep_CommandStartsWithTheSetUp_AndRunsToItsExit()
    {
        ICreateStartedBackend engine = _engine;

        await using var container = await engine.CreateStartedAsync(Specs.Shell("echo started-in-one-step"), CancellationToken.None);

        Assert.NotEqual(ContainerState.Created, container.State);
        Assert.Equal(0, await container.WaitForExitAsync());
        Assert.Equal("started-in-one-step", Assert.Single(container.GetLogs()).Text);
    }

    [Fact]
    public async Task OneStep_MissingBinary_ExecFailedAndNothingLeftBehind()
    {
        ICreateStartedBackend engine = _engine;
        var spec = Specs.Host("isotest-no-such-program") with { Limits = new ResourceLimits(MemoryBytes: 64L << 20) };

        var error = await Assert.ThrowsAsync<ExecFailedException>(() => engine.CreateStartedAsync(spec, CancellationToken.None));

        Assert.Equal(ExecFailure.NotFound, error.Reason);
        Assert.Equal("isotest-no-such-program", error.Path);
        Assert.Equal(0, _engine.LiveContainers);
        await Leaks.AssertNoContainerCgroupsAsync(_engine);
    }

    [Fact]
    public async Task OneStep_SetUpFails_TheQueuedStartIsDroppedAndNothingLeftBehind()
    {
        ICreateStartedBackend engine = _engine;
        // A file cannot be bound over a directory: only the agent finds out, mid set-up, with `start` queued.
        var spec = Specs.Host("true") with { Mounts = [new MountSpec(MountKind.Bind, "/etc/hostname", "/etc")] };

        var error = await Assert.ThrowsAsync<ContainerStartException>(() => engine.CreateStartedAsync(spec, CancellationToken.None));

        Assert.Contains("/etc", error.Message);
        Assert.IsNotType<ExecFailedException>(error);
        Assert.Equal(0, _engine.LiveContainers);
        await Leaks.AssertNoContainerCgroupsAsync(_engine);
    }

    [Fact]
    public async Task Start_NotExecutable_ExecFailedNotExecutable()
    {
        await using var container = await _engine.CreateAsync(Specs.Host("/etc/passwd"));

        var error = await Assert.ThrowsAsync<ExecFailedException>(() => container.StartAsync());

        Assert.Equal(ExecFailure.NotExecutable, error.Reason);
        Assert.Equal(13, error.Errno);
    }

    [Fact]
    public async Task Start_BadWorkdir_ExecFailedBadWorkingDirectory()
    {
        await using var container = await _engine.CreateAsync(Specs.Host("true") with { WorkingDirectory = "/no/such/dir" });

        var error = await Assert.ThrowsAsync<ExecFailedException>(() => container.StartAsync());

        Assert.Equal(ExecFailure.BadWorkingDirectory, error.Reason);
        Assert.Equal("/no/such/dir", error.Path);
    }

    [Fact]
    public async Task Logs_FollowStreamsLinesAsTheyArrive()
    {
        await using var container = await _engine.CreateAsync(Specs.Shell("for i in 1 2 3; do echo line$i; sleep 0.05; done"));
        await container.StartAsync();
        var seen = new List<string>();

        await foreach (var line in container.FollowLogsAsync())
        {
            seen.Add(line.Text);
            Assert.True(line.Timestamp > DateTimeOffset.UtcNow.AddMinutes(-1));
        }

        Assert.Equal(["line1", "line2", "line3"], seen);
    }

    [Fact]
    public async Task Mounts_BindReadOnlyTmpfsAndFilesCopiedIn()
    {
        var dir = Directory.CreateTempSubdirectory("isotest-bind-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "data.txt"), "from host");
            var spec = Specs.Shell("cat /data/data.txt; echo; touch /data/new 2>/dev/null && echo writable || echo readonly; echo x > /scratch/f && cat /scratch/f; cat /etc/app.conf; stat -c '%a %u' /etc/app.conf") with
            {
                Mounts =
                [
                    new MountSpec(MountKind.Bind, dir.FullName, "/data", ReadOnly: true),
                    new MountSpec(MountKind.Tmpfs, null, "/scratch"),
                ],
                Files = [new FileCopySpec("/etc/app.conf", "key=value\n"u8.ToArray(), null, Mode: Convert.ToInt32("600", 8))],
            };

            var result = await _engine.RunAsync(spec);

            Assert.Equal("from host\nreadonly\nx\nkey=value\n600 0\n", result.Stdout);
            Assert.False(File.Exists("/etc/app.conf") && File.ReadAllText("/etc/app.conf") == "key=value\n");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Mounts_CopyOnWrite_ContainerWritesHostDirectoryNeverChanges()
    {
        var dir = Directory.CreateTempSubdirectory("isotest-cow-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "seed"), "seed");
            var spec = Specs.Shell("echo changed > /work/seed; echo new > /work/added; cat /work/seed /work/added") with
            {
                Mounts = [new MountSpec(MountKind.CopyOnWrite, dir.FullName, "/work")],
            };

            var result = await _engine.RunAsync(spec);

            Assert.Equal("changed\nnew\n", result.Stdout);
            Assert.Equal("seed", await File.ReadAllTextAsync(Path.Combine(dir.FullName, "seed")));
            Assert.False(File.Exists(Path.Combine(dir.FullName, "added")));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Mounts_CopyOnWrite_TopKeepsTheHostDirectorysOwnerAndMode()
    {
        // PostgreSQL refuses a data directory that is not 0700 and owned by its user.
        var dir = Directory.CreateTempSubdirectory("isotest-cow-owner-");
        try
        {
            File.SetUnixFileMode(dir.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var expectedUid = Specs.IsRoot ? 65534 : 0; // rootless, the caller's files are the container user's
            if (Specs.IsRoot)
            {
                Assert.Equal(0, HostCalls.Chown(dir.FullName, 65534, 65534));
            }

            var result = await _engine.RunAsync(Specs.Shell("stat -c '%a %u' /data") with
            {
                Mounts = [new MountSpec(MountKind.CopyOnWrite, dir.FullName, "/data")],
            });

            Assert.Equal($"700 {expectedUid}\n", result.Stdout);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Mounts_TargetsUnderHostDirectoriesOwnedByOthers_AreMadeInsideWithoutTouchingTheHost()
    {
        // Root's /usr/share holds no mount on most hosts: rootless, it used to be one overlay whose directories
        // keep their (unmapped) host owner, so neither a missing mount point nor a new file could be made in it
        // (EACCES), while /var/lib/postgresql/data worked only where /var/lib/docker happened to be mounted.
        var dir = Directory.CreateTempSubdirectory("isotest-cow-deep-");
        var name = $"isotest-{Guid.NewGuid():N}"[..16];
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "seed"), "seed\n");
            var spec = Specs.Shell($"echo new > /usr/share/{name}/data/added && cat /usr/share/{name}/data/seed /usr/share/{name}/data/added "
                + $"/usr/share/{name}.conf && ls /usr/share/{name}/bind/seed && [ -n \"$(ls /usr/share/doc)\" ] && echo listed") with
            {
                Mounts =
                [
                    new MountSpec(MountKind.CopyOnWrite, dir.FullName, $"/usr/share/{name}/data"),
                    new MountSpec(MountKind.Bind, dir.FullName, $"/usr/share/{name}/bind", ReadOnly: true),
                ],
                Files = [new FileCopySpec($"/usr/share/{name}.conf", "key=value\n"u8.ToArray(), null, Mode: Convert.ToInt32("644", 8))],
            };

            var result = await _engine.RunAsync(spec);

            // The host's directories around the targets are still shown with their contents; the host is untouched.
            Assert.Equal($"seed\nnew\nkey=value\n/usr/share/{name}/bind/seed\nlisted\n", result.Stdout);
            Assert.False(File.Exists(Path.Combine(dir.FullName, "added")));
            Assert.False(Directory.Exists($"/usr/share/{name}"));
            Assert.False(File.Exists($"/usr/share/{name}.conf"));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Parallel_ManyContainersAtOnceAllSucceed()
    {
        var runs = Enumerable.Range(0, 20).Select(i => _engine.RunAsync(Specs.Shell($"echo {i}")));

        var results = await Task.WhenAll(runs);

        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"{i}\n"), results.Select(r => r.Stdout));
    }

    internal static async Task WaitForLineAsync(IContainer container, string text)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await foreach (var line in container.FollowLogsAsync(cts.Token))
        {
            if (line.Text == text)
            {
                return;
            }
        }

        throw new InvalidOperationException($"'{text}' never appeared");
    }
}
