using System.Diagnostics;
using System.Net.Http;
using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;
using IsoTest.Docker;
using Xunit;

namespace IsoTest.Tests.Docker;

[Collection(DockerCollection.Name)]
public sealed class DockerBackendTests(DockerDaemonFixture daemon)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static ContainerSpec Spec(params string[] argv) => new()
    {
        RootFileSystem = RootFileSystem.FromImage(DockerDaemonFixture.Image),
        Command = argv,
    };

    private static CancellationToken Timeout() => new CancellationTokenSource(Patience).Token;

    private async Task<IContainer> StartAsync(ContainerSpec spec)
    {
        var container = await daemon.Backend.CreateAsync(spec, Timeout());
        await container.StartAsync(Timeout());
        return container;
    }

    [Fact]
    public async Task Lifecycle_CommandExits_ReportsExitCodeAndBothStreams()
    {
        await using var container = await daemon.Backend.CreateAsync(Spec("sh", "-c", "echo to-out; echo to-err >&2; exit 3"), Timeout());
        Assert.Equal(ContainerState.Created, container.State);
        Assert.StartsWith("isotest-", container.Name);

        await container.StartAsync(Timeout());
        var code = await container.WaitForExitAsync(Timeout());

        Assert.Equal(3, code);
        Assert.Equal(3, container.ExitCode);
        Assert.False(container.OomKilled);
        Assert.Equal(ContainerState.Exited, container.State);
        var logs = container.GetLogs();
        Assert.Contains(logs, l => l.Stream == LogStream.Stdout && l.Text == "to-out");
        Assert.Contains(logs, l => l.Stream == LogStream.Stderr && l.Text == "to-err");
    }

    [Fact]
    public async Task Create_CapsAndSettings_MappedOntoHostConfig()
    {
        var spec = new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromImage(DockerDaemonFixture.Image),
            Command = ["sleep", "300"],
            Name = "isotest-caps-" + Guid.NewGuid().ToString("N")[..8],
            Hostname = "capped",
            Labels = new Dictionary<string, string> { ["team"] = "infra" },
            Limits = new ResourceLimits(MemoryBytes: 64L << 20, Cpus: 0.5, Pids: 32, CpusetCpus: "0"),
            ReadOnlyRootFileSystem = true,
        };
        await using var container = await daemon.Backend.CreateAsync(spec, Timeout());

        var inspect = await daemon.Client.Containers.InspectContainerAsync(container.Id);
        var host = inspect.HostConfig!;
        Assert.Equal(64L << 20, host.Memory);
        Assert.Equal(64L << 20, host.MemorySwap); // swap off
        Assert.Equal(500_000_000, host.NanoCPUs);
        Assert.Equal(32, host.PidsLimit);
        Assert.Equal("0", host.CpusetCpus);
        Assert.True(host.ReadonlyRootfs);
        Assert.Equal("none", host.NetworkMode); // no ports: loopback only, like the engine
        Assert.Equal("/" + spec.Name, inspect.Name);
        var config = inspect.Config!;
        Assert.Equal("capped", config.Hostname);
        Assert.Equal("infra", config.Labels["team"]);
        Assert.Equal("1", config.Labels["isotest"]);
        Assert.Equal(Environment.ProcessId.ToString(), config.Labels["isotest.owner.pid"]);
        Assert.Equal(Environment.MachineName, config.Labels["isotest.owner.host"]);
    }

    [Fact]
    public async Task Start_UserWorkdirEnvHostname_SeenByTheCommand()
    {
        var spec = new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromImage(DockerDaemonFixture.Image),
            Entrypoint = ["sh", "-c"],
            Command = ["echo \"$(id -u):$(id -g) $(pwd) $(hostname) $GREETING\""],
            User = "65534:65534",
            WorkingDirectory = "/tmp",
            Hostname = "box",
            Environment = new Dictionary<string, string> { ["GREETING"] = "hello world" },
        };
        await using var container = await StartAsync(spec);

        Assert.Equal(0, await container.WaitForExitAsync(Timeout()));
        Assert.Equal("65534:65534 /tmp box hello world", Assert.Single(container.GetLogs()).Text);
    }

    [Fact]
    public async Task Port_Published_ReachableOverHttpOnLoopback()
    {
        var spec = new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromImage(DockerDaemonFixture.Image),
            Command = ["sh", "-c", "echo served-by-busybox > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
            Ports = [8080],
        };
        await using var container = await StartAsync(spec);
        var endpoint = container.GetEndpoint(8080);
        Assert.Equal("127.0.0.1", endpoint.Host);
        Assert.NotEqual(8080, endpoint.Port);
        Assert.Throws<ArgumentException>(() => container.GetEndpoint(9090));

        // Readiness through the backend's own probe (inside the container), then a real request from the host.
        var probes = (IContainerProbes)container;
        var token = Timeout();
        while (!await probes.IsPortOpenAsync(8080, token))
        {
            await Task.Delay(50, token);
        }

        using var http = new HttpClient();
        var body = await http.GetStringAsync(new Uri(endpoint.ToUri(), "index.html"), token);
        Assert.Equal("served-by-busybox\n", body);
    }

    [Fact]
    public async Task Exec_InRunningContainer_ReturnsOutputAndExitCode()
    {
        await using var container = await StartAsync(Spec("sleep", "300"));

        var result = await container.ExecAsync(["sh", "-c", "echo out-line; echo err-line >&2; exit 4"], Timeout());

        Assert.Equal(4, result.ExitCode);
        Assert.Equal("out-line\n", result.Stdout);
        Assert.Equal("err-line\n", result.Stderr);
        var missing = await Assert.ThrowsAsync<ExecFailedException>(() => container.ExecAsync(["/no/such/program"], Timeout()));
        Assert.Equal(ExecFailure.NotFound, missing.Reason);
    }

    [Fact]
    public async Task Start_MissingProgram_ExecFailedNotFound()
    {
        await using var container = await daemon.Backend.CreateAsync(Spec("/no/such/program"), Timeout());

        var e = await Assert.ThrowsAsync<ExecFailedException>(() => container.StartAsync(Timeout()));

        Assert.Equal(ExecFailure.NotFound, e.Reason);
        Assert.Equal(container.Id, e.ContainerId);
    }

    [Fact]
    public async Task Files_CopiedBeforeStart_WithModeAndOwner()
    {
        var source = Path.Combine(Path.GetTempPath(), "isotest-docker-src-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(source, "from-host-file\n");
        try
        {
            var spec = new ContainerSpec
            {
                RootFileSystem = RootFileSystem.FromImage(DockerDaemonFixture.Image),
                Command = ["sh", "-c", "stat -c '%a %u %g' /etc/app/secret.txt; cat /etc/app/secret.txt /opt/copied.txt; stat -c '%a' /tmp"],
                Files =
                [
                    new FileCopySpec("/etc/app/secret.txt", Encoding.UTF8.GetBytes("inline-content\n"), null, Mode: 0b110_000_000, Uid: 65534, Gid: 65534),
                    new FileCopySpec("/opt/copied.txt", null, source),
                ],
            };
            await using var container = await StartAsync(spec);

            Assert.Equal(0, await container.WaitForExitAsync(Timeout()));
            // /tmp keeps its sticky mode: the upload creates parents without touching existing directories.
            Assert.Equal(["600 65534 65534", "inline-content", "from-host-file", "1777"], container.GetLogs().Select(l => l.Text));
        }
        finally
        {
            File.Delete(source);
        }
    }

    [Fact]
    public async Task CopyOnWriteMount_ContainerWrites_HostDirectoryUnchanged()
    {
        var dir = Directory.CreateTempSubdirectory("isotest-docker-cow-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "data.txt"), "original\n");
            Directory.CreateDirectory(Path.Combine(dir, "sub"));
            await File.WriteAllTextAsync(Path.Combine(dir, "sub", "nested.txt"), "nested\n");
            var spec = new ContainerSpec
            {
                RootFileSystem = RootFileSystem.FromImage(DockerDaemonFixture.Image),
                Command = ["sh", "-c", "echo changed >> /srv/data/data.txt && touch /srv/data/new.txt && cat /srv/data/data.txt /srv/data/sub/nested.txt"],
                Mounts = [new MountSpec(MountKind.CopyOnWrite, dir, "/srv/data")],
            };
            await using var container = await StartAsync(spec);

            Assert.Equal(0, await container.WaitForExitAsync(Timeout()));
            Assert.Equal(["original", "changed", "nested"], container.GetLogs().Select(l => l.Text));
            Assert.Equal("original\n", await File.ReadAllTextAsync(Path.Combine(dir, "data.txt")));
            Assert.False(File.Exists(Path.Combine(dir, "new.txt")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task BindAndTmpfsMounts_ReadOnlyAndWritable()
    {
        var dir = Directory.CreateTempSubdirectory("isotest-docker-bind-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "in.txt"), "bound\n");
            var spec = new ContainerSpec
            {
                RootFileSystem = RootFileSystem.FromImage(DockerDaemonFixture.Image),
                Command = ["sh", "-c", "cat /ro/in.txt; echo out > /rw/out.txt; touch /ro/x 2>/dev/null || echo ro-refused; echo t > /scratch/t && grep -c ' /scratch tmpfs' /proc/mounts"],
                Mounts =
                [
                    new MountSpec(MountKind.Bind, dir, "/ro", ReadOnly: true),
                    new MountSpec(MountKind.Bind, dir, "/rw"),
                    new MountSpec(MountKind.Tmpfs, null, "/scratch", SizeBytes: 1 << 20),
                ],
            };
            await using var container = await StartAsync(spec);

            Assert.Equal(0, await container.WaitForExitAsync(Timeout()));
            Assert.Equal(["bound", "ro-refused", "1"], container.GetLogs().Select(l => l.Text));
            Assert.Equal("out\n", await File.ReadAllTextAsync(Path.Combine(dir, "out.txt")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task PrivateNetworkWithoutPorts_OnlyLoopback()
    {
        await using var container = await StartAsync(Spec("sh", "-c", "ls /sys/class/net"));

        Assert.Equal(0, await container.WaitForExitAsync(Timeout()));
        Assert.Equal(["lo"], container.GetLogs().Select(l => l.Text));
    }

    [Fact]
    public async Task FromDirectory_ImportedOnce_ReusedAfterwards()
    {
        var rootfs = Directory.CreateTempSubdirectory("isotest-docker-rootfs-").FullName;
        string? reference = null;
        try
        {
            Directory.CreateDirectory(Path.Combine(rootfs, "bin"));
            File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
            File.CreateSymbolicLink(Path.Combine(rootfs, "bin", "sh"), "busybox");
            File.CreateSymbolicLink(Path.Combine(rootfs, "bin", "echo"), "busybox");
            await File.WriteAllTextAsync(Path.Combine(rootfs, "marker"), "from-directory\n");
            reference = DockerImages.DirectoryImageReference(rootfs);
            var spec = new ContainerSpec
            {
                RootFileSystem = RootFileSystem.FromDirectory(rootfs),
                Command = ["/bin/sh", "-c", "read line < /marker; echo $line"],
            };

            await using (var first = await StartAsync(spec))
            {
                Assert.Equal(0, await first.WaitForExitAsync(Timeout()));
                Assert.Equal("from-directory", Assert.Single(first.GetLogs()).Text);
            }

            var imported = await daemon.Client.Images.InspectImageAsync(reference);
            Assert.Equal("1", imported.Config!.Labels!["isotest"]);

            await using (var second = await StartAsync(spec))
            {
                Assert.Equal(0, await second.WaitForExitAsync(Timeout()));
                Assert.Equal("from-directory", Assert.Single(second.GetLogs()).Text);
            }

            // Reused: the same image, not a second import.
            Assert.Equal(imported.ID, (await daemon.Client.Images.InspectImageAsync(reference)).ID);
            var tagged = await daemon.Client.Images.ListImagesAsync(new ImagesListParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["reference"] = new Dictionary<string, bool> { [DockerImages.DirectoryRepository] = true } },
            });
            Assert.Single(tagged, i => i.RepoTags?.Contains(reference) == true);
        }
        finally
        {
            if (reference is not null)
            {
                try
                {
                    await daemon.Client.Images.DeleteImageAsync(reference, new ImageDeleteParameters { Force = true });
                }
                catch (DockerImageNotFoundException)
                {
                }
            }

            Directory.Delete(rootfs, recursive: true);
        }
    }

    [Fact]
    public async Task FromHost_Refused_NamesTheAlternatives()
    {
        var spec = new ContainerSpec { RootFileSystem = RootFileSystem.Host, Command = ["true"] };

        var e = await Assert.ThrowsAsync<BackendUnavailableException>(() => daemon.Backend.CreateAsync(spec, Timeout()));

        Assert.Contains("FromImage", e.Message);
        Assert.Contains("FromDirectory", e.Message);
    }

    [Fact]
    public async Task PullPolicyNever_MissingImage_ImagePullException()
    {
        await using var backend = new DockerBackend(new DockerBackendOptions { PullPolicy = ImagePullPolicy.Never });
        var spec = new ContainerSpec { RootFileSystem = RootFileSystem.FromImage("isotest/not-there:" + Guid.NewGuid().ToString("N")[..8]), Command = ["true"] };

        var e = await Assert.ThrowsAsync<ImagePullException>(() => backend.CreateAsync(spec, Timeout()));

        Assert.Equal(spec.RootFileSystem.Source, e.Image);
        Assert.Contains("Never", e.Message);
    }

    [Fact]
    public async Task PullPolicyMissing_UnreachableRegistry_ImagePullExceptionWithRegistryMessage()
    {
        // .invalid never resolves (RFC 2606), with or without internet access.
        var spec = new ContainerSpec { RootFileSystem = RootFileSystem.FromImage("registry.invalid/isotest/nothing:1"), Command = ["true"] };

        var e = await Assert.ThrowsAsync<ImagePullException>(() => daemon.Backend.CreateAsync(spec, Timeout()));

        Assert.Equal("registry.invalid/isotest/nothing:1", e.Image);
        Assert.Contains("registry.invalid", e.Message.Replace("Image 'registry.invalid/isotest/nothing:1'", ""));
    }

    [Fact]
    public async Task Dispose_Twice_AndAfterExternalRemoval_NeverThrows()
    {
        var container = await StartAsync(Spec("sleep", "300"));
        await container.DisposeAsync();
        await container.DisposeAsync();
        Assert.Equal(ContainerState.Removed, container.State);
        await Assert.ThrowsAsync<DockerContainerNotFoundException>(() => daemon.Client.Containers.InspectContainerAsync(container.Id));

        var other = await StartAsync(Spec("sleep", "300"));
        await daemon.Client.Containers.RemoveContainerAsync(other.Id, new ContainerRemoveParameters { Force = true });
        await other.DisposeAsync();
        Assert.Equal(ContainerState.Removed, other.State);
    }

    [Fact]
    public async Task Stop_CommandHandlesTerm_ExitsCleanly_IgnoresTerm_Killed()
    {
        await using var polite = await StartAsync(Spec("sh", "-c", "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"));
        await foreach (var line in polite.FollowLogsAsync(Timeout()))
        {
            if (line.Text == "ready")
            {
                break;
            }
        }

        await polite.StopAsync(TimeSpan.FromSeconds(30), Timeout());
        Assert.Equal(0, polite.ExitCode);

        // sleep as PID 1 has no TERM handler, and the kernel does not deliver unhandled signals to PID 1.
        await using var stubborn = await StartAsync(Spec("sleep", "300"));
        await stubborn.StopAsync(TimeSpan.FromSeconds(1), Timeout());
        Assert.Equal(137, stubborn.ExitCode);
        Assert.Equal(ContainerState.Exited, stubborn.State);
    }

    [Fact]
    public async Task Stats_RunningContainer_ReportsCpuAndMemory()
    {
        await using var container = await StartAsync(Spec("sleep", "300"));
        await container.ExecAsync(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"], Timeout());

        var stats = await container.GetStatsAsync(Timeout());

        Assert.True(stats.CpuTime > TimeSpan.Zero);
        if (Directory.Exists("/sys/fs/cgroup/memory"))
        {
            Assert.True(stats.PeakMemoryBytes > 0); // cgroup v1 reports max_usage; v2 does not
        }
    }

    [Fact]
    public async Task Probes_FileExists_AnswersFromInsideTheContainer()
    {
        await using var container = await StartAsync(Spec("sleep", "300"));
        var probes = (IContainerProbes)container;

        Assert.True(await probes.FileExistsAsync("/bin/busybox", Timeout()));
        Assert.False(await probes.FileExistsAsync("/no/such/file", Timeout()));
    }

    [Fact]
    public async Task Sweep_DeadOwner_RemovedByNewBackend_LiveOwnerKept()
    {
        var deadPid = await DeadPidAsync();
        var orphan = await daemon.Client.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = DockerDaemonFixture.Image,
            Cmd = ["sleep", "300"],
            Name = "isotest-orphan-" + Guid.NewGuid().ToString("N")[..8],
            Labels = new Dictionary<string, string>
            {
                ["isotest"] = "1",
                ["isotest.owner.pid"] = deadPid.ToString(),
                ["isotest.owner.start"] = "12345",
                ["isotest.owner.host"] = Environment.MachineName,
            },
            HostConfig = new HostConfig { NetworkMode = "none" },
        });
        await daemon.Client.Containers.StartContainerAsync(orphan.ID, new ContainerStartParameters());
        await using var mine = await daemon.Backend.CreateAsync(Spec("sleep", "300"), Timeout());

        await using (var fresh = DockerBackend.Create())
        {
            await fresh.GetClientAsync(Timeout());
        }

        await Assert.ThrowsAsync<DockerContainerNotFoundException>(() => daemon.Client.Containers.InspectContainerAsync(orphan.ID));
        var kept = await daemon.Client.Containers.InspectContainerAsync(mine.Id);
        Assert.Equal(mine.Id, kept.ID);
    }

    [Fact]
    public async Task Sweep_OwnerKilledWithSigkill_NextBackendRemovesItsContainers()
    {
        // A real crash: the owner process starts containers, then dies by SIGKILL (no clean-up runs).
        var ownerDll = Path.Combine(AppContext.BaseDirectory.Replace("IsoTest.Tests", "IsoTest.Engine.Tests.Owner", StringComparison.Ordinal), "IsoTest.Engine.Tests.Owner.dll");
        using var owner = Process.Start(new ProcessStartInfo("dotnet", [ownerDll, "2", "docker"]) { RedirectStandardOutput = true })!;
        var ready = await owner.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.StartsWith("ready ", ready);
        var ids = ready!["ready ".Length..].Split(',');
        owner.Kill();
        await owner.WaitForExitAsync();

        // Docker keeps them running: nothing on the daemon's side knows the owner died.
        foreach (var id in ids)
        {
            var state = (await daemon.Client.Containers.InspectContainerAsync(id)).State;
            Assert.True(state?.Running);
        }

        await using (var next = DockerBackend.Create())
        {
            await next.GetClientAsync(Timeout()); // the first contact sweeps
        }

        foreach (var id in ids)
        {
            await Assert.ThrowsAsync<DockerContainerNotFoundException>(() => daemon.Client.Containers.InspectContainerAsync(id));
        }
    }

    /// <summary>The pid of a process that has exited and been reaped.</summary>
    private static async Task<int> DeadPidAsync()
    {
        using var process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        await process.WaitForExitAsync();
        var pid = process.Id;
        Assert.Null(DockerOwner.StartTicksOf(pid));
        return pid;
    }
}
