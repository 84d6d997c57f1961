using System.Text;
using IsoTest.Tests.Fakes;
using Xunit;

namespace IsoTest.Tests;

public sealed class ContainerBuilderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-builder-").FullName;

    private static readonly ContainerBuilder Valid = new ContainerBuilder().FromHost().WithCommand("redis-server", "--port", "6379");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, Func<ContainerBuilder, ContainerBuilder>> Changes => new()
    {
        { "FromDirectory", b => b.FromDirectory("/") },
        { "FromImage", b => b.FromImage("busybox:latest") },
        { "WithCommand", b => b.WithCommand("true") },
        { "WithEntrypoint", b => b.WithEntrypoint("/bin/sh", "-c") },
        { "WithEnvironment", b => b.WithEnvironment("A", "1") },
        { "WithEnvironment(dictionary)", b => b.WithEnvironment(new Dictionary<string, string> { ["B"] = "2" }) },
        { "WithWorkingDirectory", b => b.WithWorkingDirectory("/tmp") },
        { "WithUser", b => b.WithUser("1000:1000") },
        { "WithHostname", b => b.WithHostname("cache") },
        { "WithName", b => b.WithName("cache-1") },
        { "WithLabel", b => b.WithLabel("team", "a") },
        { "WithMemoryLimit(text)", b => b.WithMemoryLimit("64m") },
        { "WithMemoryLimit(bytes)", b => b.WithMemoryLimit(64L << 20) },
        { "WithCpuLimit", b => b.WithCpuLimit(0.5) },
        { "WithPidsLimit", b => b.WithPidsLimit(64) },
        { "WithCpuset", b => b.WithCpuset("0") },
        { "WithPort", b => b.WithPort(6379) },
        { "WithBindMount", b => b.WithBindMount("/etc", "/host-etc", readOnly: true) },
        { "WithTmpfsMount", b => b.WithTmpfsMount("/scratch", "16m") },
        { "WithCopyOnWriteMount", b => b.WithCopyOnWriteMount("/etc", "/cow") },
        { "WithFile", b => b.WithFile("/etc/app.conf", "x=1") },
        { "WithFile(bytes)", b => b.WithFile("/etc/app.bin", [1, 2, 3]) },
        { "WithFileFrom", b => b.WithFileFrom("/etc/hostname", "/etc/copied") },
        { "WithReadOnlyRootFileSystem", b => b.WithReadOnlyRootFileSystem() },
        { "WithNetwork", b => b.WithNetwork(Network.Host) },
        { "WaitFor", b => b.WithPort(6379).WaitFor(Wait.ForPort(6379)) },
        { "WithStopTimeout", b => b.WithStopTimeout(TimeSpan.FromSeconds(1)) },
    };

    [Theory]
    [MemberData(nameof(Changes))]
    public void With_ReturnsANewBuilderAndLeavesTheOriginal(string name, Func<ContainerBuilder, ContainerBuilder> change)
    {
        var before = Describe(Valid.Build());

        var changed = change(Valid);

        Assert.NotSame(Valid, changed);
        Assert.Equal(before, Describe(Valid.Build()));
        Assert.True(before != Describe(changed.Build()), $"{name} changed nothing in the spec");
    }

    [Fact]
    public void WithBackendAndTimeProvider_ReturnNewBuilders()
    {
        var backend = new FakeBackend();

        var withBackend = Valid.WithBackend(backend);
        var withClock = withBackend.WithTimeProvider(TimeProvider.System);

        Assert.Null(Valid.State.Backend);
        Assert.Same(backend, withBackend.State.Backend);
        Assert.Null(withBackend.State.TimeProvider);
        Assert.Same(TimeProvider.System, withClock.State.TimeProvider);
    }

    [Fact]
    public void Build_MapsEverySetting()
    {
        var hostFile = Path.Combine(_dir, "script.sh");
        File.WriteAllText(hostFile, "echo hi");
        File.SetUnixFileMode(hostFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var wait = Wait.ForPort(6379);

        var spec = new ContainerBuilder()
            .FromDirectory(_dir)
            .WithEntrypoint("/bin/sh")
            .WithCommand("-c", "exec redis-server")
            .WithEnvironment("A", "1").WithEnvironment("A", "2")
            .WithWorkingDirectory("/data").WithUser("999").WithHostname("cache").WithName("cache_1")
            .WithLabel("team", "infra")
            .WithMemoryLimit("64m").WithCpuLimit(0.5).WithPidsLimit(64).WithCpuset("0")
            .WithPort(6379).WithPort(6380)
            .WithBindMount(_dir, "/src", readOnly: true)
            .WithTmpfsMount("/scratch", "16m")
            .WithCopyOnWriteMount(_dir, "/cow")
            .WithFile("/scratch/conf", "port 6379")
            .WithFileFrom(hostFile, "/scratch/run.sh", uid: 999, gid: 998)
            .WithReadOnlyRootFileSystem()
            .WithNetwork(Network.Host)
            .WaitFor(wait)
            .WithStopTimeout(TimeSpan.FromSeconds(3))
            .Build();

        Assert.Equal(RootFileSystem.FromDirectory(_dir), spec.RootFileSystem);
        Assert.Equal(["/bin/sh", "-c", "exec redis-server"], spec.Argv);
        Assert.Equal("2", spec.Environment["A"]);
        Assert.Equal(("/data", "999", "cache", "cache_1"), (spec.WorkingDirectory, spec.User, spec.Hostname, spec.Name));
        Assert.Equal("infra", spec.Labels["team"]);
        Assert.Equal(new ResourceLimits(64L << 20, 0.5, 64, "0"), spec.Limits);
        Assert.Equal([6379, 6380], spec.Ports);
        Assert.Equal(
            [
                new MountSpec(MountKind.Bind, _dir, "/src", ReadOnly: true),
                new MountSpec(MountKind.Tmpfs, null, "/scratch", SizeBytes: 16L << 20),
                new MountSpec(MountKind.CopyOnWrite, _dir, "/cow"),
            ],
            spec.Mounts);
        Assert.Equal("port 6379", Encoding.UTF8.GetString(spec.Files[0].Content!.Value.Span));
        Assert.Equal(Convert.ToInt32("644", 8), spec.Files[0].Mode);
        Assert.Equal(hostFile, spec.Files[1].SourcePath);
        Assert.Null(spec.Files[1].Content);
        Assert.Equal(Convert.ToInt32("700", 8), spec.Files[1].Mode); // the host file's mode
        Assert.Equal((999, 998), (spec.Files[1].Uid, spec.Files[1].Gid));
        Assert.True(spec.ReadOnlyRootFileSystem);
        Assert.Equal(Network.Host, spec.Network);
        Assert.Same(wait, spec.WaitStrategy);
        Assert.Equal(TimeSpan.FromSeconds(3), spec.StopTimeout);
    }

    [Fact]
    public void Build_Defaults()
    {
        var spec = Valid.Build();

        Assert.Equal(RootFileSystem.Host, spec.RootFileSystem);
        Assert.Equal(ResourceLimits.None, spec.Limits);
        Assert.Equal(Network.Private, spec.Network);
        Assert.Equal(TimeSpan.FromSeconds(10), spec.StopTimeout);
        Assert.Null(spec.WaitStrategy);
        Assert.False(spec.ReadOnlyRootFileSystem);
    }

    [Fact]
    public void Build_ImageWithoutCommand_UsesTheImageDefault()
    {
        var spec = new ContainerBuilder().FromImage("redis:7").Build();

        Assert.Empty(spec.Argv);
    }

    [Fact]
    public void WithFile_CopiesTheBytes()
    {
        var content = new byte[] { 1, 2, 3 };
        var builder = Valid.WithFile("/data.bin", content, UnixFileMode.UserRead);

        content[0] = 42;

        var file = Assert.Single(builder.Build().Files);
        Assert.Equal([1, 2, 3], file.Content!.Value.ToArray());
        Assert.Equal((int)UnixFileMode.UserRead, file.Mode);
    }

    [Fact]
    public void FromX_LastRootWins()
    {
        Assert.Equal(RootFileSystem.FromImage("busybox"), Valid.FromDirectory("/").FromImage("busybox").Build().RootFileSystem);
    }

    [Fact]
    public async Task StartAsync_CreatesStartsWaitsAndReturnsTheContainer()
    {
        var backend = new FakeBackend { OnCreate = c => c.Log("Ready to accept connections") };

        var container = await Valid.WaitFor(Wait.ForLogMessage("Ready")).WithBackend(backend).StartAsync();

        var created = Assert.Single(backend.Created);
        Assert.Same(created, container);
        Assert.Equal(ContainerState.Running, container.State);
        Assert.Equal(0, created.Disposals);
        Assert.Equal(["redis-server", "--port", "6379"], container.Spec.Argv);
    }

    [Fact]
    public async Task StartAsync_InvalidSpec_CreatesNothing()
    {
        var backend = new FakeBackend();

        await Assert.ThrowsAsync<InvalidContainerSpecException>(() => Valid.WithPidsLimit(0).WithBackend(backend).StartAsync());

        Assert.Empty(backend.Created);
    }

    [Fact]
    public async Task StartAsync_StartFails_RemovesTheContainer()
    {
        var backend = new FakeBackend { OnCreate = c => c.StartFailure = new InvalidOperationException("boom") };

        await Assert.ThrowsAsync<InvalidOperationException>(() => Valid.WithBackend(backend).StartAsync());

        Assert.Equal(1, Assert.Single(backend.Created).Disposals);
    }

    [Fact]
    public async Task StartAsync_ContainerExitsWhileWaiting_RemovesItAndReports()
    {
        var backend = new FakeBackend
        {
            OnCreate = c =>
            {
                c.Log("FATAL: bad config");
                c.Exit(1);
            },
        };

        var e = await Assert.ThrowsAsync<ContainerExitedException>(() => Valid.WaitFor(Wait.ForLogMessage("Ready")).WithBackend(backend).StartAsync());

        Assert.Contains("FATAL: bad config", e.Message);
        Assert.Equal(ContainerState.Removed, Assert.Single(backend.Created).State);
    }

    [Fact]
    public async Task StartAsync_WaitTimesOut_RemovesTheContainer()
    {
        var time = new TimerLog();
        var backend = new FakeBackend();
        var start = Valid.WaitFor(Wait.ForLogMessage("Ready").WithTimeout(TimeSpan.FromSeconds(1))).WithBackend(backend).WithTimeProvider(time).StartAsync();

        // The fake backend completes synchronously, so the wait (and its timeout timer) has begun.
        time.Clock.Advance(TimeSpan.FromSeconds(1));

        await Assert.ThrowsAsync<WaitTimeoutException>(() => start);
        Assert.Equal(1, Assert.Single(backend.Created).Disposals);
    }

    [Fact]
    public async Task StartAsync_Cancelled_RemovesTheContainer()
    {
        using var cts = new CancellationTokenSource();
        var backend = new FakeBackend();
        var start = Valid.WaitFor(Wait.ForLogMessage("Ready")).WithBackend(backend).StartAsync(cts.Token);

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => start);
        Assert.Equal(1, Assert.Single(backend.Created).Disposals);
    }

    [Fact]
    public async Task StartAsync_RemovalFailsToo_SaysTheContainerMayBeLeft()
    {
        var backend = new FakeBackend
        {
            OnCreate = c =>
            {
                c.StartFailure = new InvalidOperationException("boom");
                c.DisposeFailure = new IOException("device busy");
            },
        };

        var e = await Assert.ThrowsAsync<ContainerStartException>(() => Valid.WithBackend(backend).StartAsync());

        Assert.Contains("boom", e.Message);
        Assert.Contains("device busy", e.Message);
        Assert.Contains("could not be removed", e.Message);
    }

    [Fact]
    public async Task StartAsync_ImageCannotBeHad_TheMessageCarriesTheImageHint()
    {
        var backend = new FakeBackend { OnCreate = _ => throw new ImagePullException("postgres:16", "the registry docker.io cannot be reached.") };
        var definition = new ContainerBuilder().FromImage("postgres:16").WithImageHint("Set ISOTEST_POSTGRES_IMAGE, or use FromHost().").WithBackend(backend);

        var e = await Assert.ThrowsAsync<ImagePullException>(() => definition.StartAsync());

        Assert.Equal("Image 'postgres:16': the registry docker.io cannot be reached.\nSet ISOTEST_POSTGRES_IMAGE, or use FromHost().", e.Message);
        Assert.Throws<ArgumentException>(() => Valid.WithImageHint(""));
    }

    [Fact]
    public async Task StartAsync_AnotherFailure_GetsNoImageHint()
    {
        var backend = new FakeBackend { OnCreate = c => c.StartFailure = new ContainerStartException(null, "no such program") };

        var e = await Assert.ThrowsAsync<ContainerStartException>(() => Valid.WithImageHint("Set ISOTEST_POSTGRES_IMAGE.").WithBackend(backend).StartAsync());

        Assert.DoesNotContain("ISOTEST_POSTGRES_IMAGE", e.Message, StringComparison.Ordinal);
    }

    private static string Describe(ContainerSpec s) => string.Join(
        "\n",
        s.RootFileSystem,
        string.Join(' ', s.Entrypoint),
        string.Join(' ', s.Command),
        string.Join(',', s.Environment.OrderBy(p => p.Key)),
        s.WorkingDirectory,
        s.User,
        s.Hostname,
        s.Name,
        string.Join(',', s.Labels.OrderBy(p => p.Key)),
        s.Limits,
        string.Join(',', s.Ports),
        string.Join(',', s.Mounts),
        string.Join(',', s.Files.Select(f => $"{f.Target} {f.SourcePath} {f.Mode} {(f.Content is { } c ? Convert.ToHexString(c.Span) : null)}")),
        s.ReadOnlyRootFileSystem,
        s.Network,
        s.WaitStrategy,
        s.StopTimeout);
}
