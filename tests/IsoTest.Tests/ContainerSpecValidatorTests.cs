using Xunit;

namespace IsoTest.Tests;

public sealed class ContainerSpecValidatorTests : IDisposable
{
    private static readonly ContainerBuilder Valid = new ContainerBuilder().FromHost().WithCommand("sleep", "1");

    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-validate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Missing => "/nonexistent-isotest-" + Guid.NewGuid().ToString("N");

    public static TheoryData<Func<ContainerBuilder, ContainerBuilder>, string> Problems => new()
    {
        { _ => new ContainerBuilder().WithCommand("true"), "No root filesystem" },
        { b => b.WithNetworkAliases("db"), "aliases are names on a network: add WithNetwork(network)" },
        { b => b.WithNetwork("n").WithNetworkAliases("bad_alias"), "WithNetworkAliases(\"bad_alias\"): not a valid host name" },
        { b => b.WithNetwork("n").WithNetworkAliases("db", "DB"), "alias 'db' is given twice" },
        { b => b.WithNetwork("n").WithNetwork(new NamedNetwork("n")), "network 'n' is joined twice" },
        { b => b.WithNetwork(Network.Host).WithNetwork("n"), "cannot join another" },
        { _ => new ContainerBuilder().FromHost(), "No command" },
        { b => b.FromDirectory("/").WithCommand(), "No command" },
        { b => b.WithCommand(""), "WithCommand: the program (the first element) is empty" },
        { b => b.WithEntrypoint("", "-c"), "WithEntrypoint: the program (the first element) is empty" },
        { b => b.WithCommand("echo", "a\0b"), "argument 1" },
        { b => b.FromDirectory("rootfs"), "must be absolute" },
        { b => b.FromDirectory(Missing), "the directory does not exist" },
        { b => b.FromImage("busy box"), "not an image reference" },
        { b => b.WithEnvironment("A=B", "1"), "cannot be empty or contain '='" },
        { b => b.WithEnvironment("", "1"), "cannot be empty or contain '='" },
        { b => b.WithEnvironment("A", "x\0y"), "the value contains NUL" },
        { b => b.WithLabel("", "x"), "WithLabel" },
        { b => b.WithWorkingDirectory("app"), "WithWorkingDirectory(\"app\"): must be an absolute path" },
        { b => b.WithUser("1000:1000:1"), "WithUser" },
        { b => b.WithUser("a b"), "WithUser" },
        { b => b.WithUser("4294967295"), "WithUser" },
        { b => b.WithHostname("-bad"), "WithHostname" },
        { b => b.WithHostname(new string('a', 65)), "at most 64 characters" },
        { b => b.WithName("my container"), "WithName" },
        { b => b.WithMemoryLimit("4m"), "below the minimum of 6 MiB (Docker's minimum" },
        { b => b.WithMemoryLimit(1024), "below the minimum of 6 MiB" },
        { b => b.WithMemoryLimit("lots"), "is not a size" },
        { b => b.WithMemoryLimit("184467440737095516161.5g"), "is too large" }, // decimal overflowed here (found by the fuzzer)
        { b => b.WithCpuLimit(0), "WithCpuLimit(0)" },
        { b => b.WithCpuLimit(-1), "WithCpuLimit(-1)" },
        { b => b.WithCpuLimit(double.NaN), "WithCpuLimit(NaN)" },
        { b => b.WithCpuLimit(Environment.ProcessorCount + 1), $"at most {Environment.ProcessorCount} (this machine's CPUs)" },
        { b => b.WithPidsLimit(0), "WithPidsLimit(0): at least 1" },
        { b => b.WithCpuset("0-"), "not cpuset syntax" },
        { b => b.WithCpuset("1-0"), "not cpuset syntax" },
        { b => b.WithCpuset("a"), "not cpuset syntax" },
        { b => b.WithPort(0), "WithPort(0): a TCP port is in 1..65535" },
        { b => b.WithPort(65536), "WithPort(65536)" },
        { b => b.WithPort(80).WithPort(80), "WithPort(80) is given more than once" },
        { b => b.WithPortBinding(0, 80), "WithPortBinding(0, 80): a host port is in 1..65535" },
        { b => b.WithPortBinding(70000, 80), "WithPortBinding(70000, 80)" },
        { b => b.WithPortBinding(18080, 80).WithPortBinding(18081, 80), "container port 80 is already bound to host port 18080" },
        { b => b.WithPortBinding(18080, 80).WithPortBinding(18080, 81), "host port 18080 is bound for container ports 80 and 81" },
        { b => b.WithPortBinding(18080, 80).WithNetwork(Network.Host), "with Network.Host: the container's port 80 is the host's own port" },
        { b => b.WithBindMount("data", "/data"), "must be absolute" },
        { b => b.WithBindMount(Missing, "/data"), "the host path does not exist" },
        { b => b.WithBindMount("/etc", "data"), "the mount target must be an absolute path" },
        { b => b.WithBindMount("/etc", "/"), "cannot mount over the root" },
        { b => b.WithTmpfsMount("/a").WithTmpfsMount("/a/"), "Mount target \"/a\" is used by more than one mount" },
        { b => b.WithTmpfsMount("/a", "huge"), "is not a size" },
        { b => b.WithTmpfsMount("/a", "0"), "must be above zero" },
        { b => b.WithCopyOnWriteMount("/etc/hostname", "/cow"), "the host directory does not exist (or is not a directory)" },
        { b => b.WithCopyOnWriteMount("etc", "/cow"), "must be absolute" },
        { b => b.WithFile("etc/app.conf", "x"), "the target must be an absolute file path" },
        { b => b.WithFile("/etc/", "x"), "the target must be an absolute file path" },
        { b => b.WithFile("/a", "x").WithFile("/a", "y"), "File target \"/a\" is written more than once" },
        { b => b.WithFile("/a", "x", (UnixFileMode)0x10000), "has bits beyond permissions" },
        { b => b.WithFile("/a", "x", uid: -1), "cannot be negative" },
        { b => b.WithFileFrom(Missing, "/a"), "the host file does not exist" },
        { b => b.WithFileFrom("/etc", "/a"), "the host file does not exist (or is a directory)" },
        { b => b.WithFileFrom("hosts", "/a"), "must be absolute" },
        { b => b.WithReadOnlyRootFileSystem().WithFile("/etc/a", "x"), "the root filesystem is read-only" },
        { b => b.WithReadOnlyRootFileSystem().WithTmpfsMount("/etc").WithBindMount("/tmp", "/ro", readOnly: true).WithFile("/ro/a", "x"), "the root filesystem is read-only" },
        { b => b.WithStopTimeout(TimeSpan.FromSeconds(-1)), "cannot be negative" },
        { b => b.WithNetwork("host"), "'host' is not a user-defined network: use Network.Host" },
        { b => b.WithNetwork("bad name"), "a network name starts with a letter or digit" },
        { b => b.WaitFor(Wait.ForPort(6379)), "port 6379 is not published: add WithPort(6379)" },
        { b => b.WaitFor(Wait.ForLogMessage("x").And(Wait.ForHttp("/", 8080))), "port 8080 is not published" },
    };

    [Theory]
    [MemberData(nameof(Problems))]
    public void Build_OneProblem_ReportsItNamingTheFix(Func<ContainerBuilder, ContainerBuilder> configure, string expected)
    {
        var e = Assert.Throws<InvalidContainerSpecException>(() => configure(Valid).Build());

        var error = Assert.Single(e.Errors);
        Assert.Contains(expected, error);
        Assert.Contains(error, e.Message);
    }

    [Fact]
    public void Build_ManyProblems_ReportsEveryOneAtOnce()
    {
        var builder = new ContainerBuilder()
            .FromDirectory("relative")
            .WithMemoryLimit("1m")
            .WithCpuLimit(0)
            .WithPidsLimit(-1)
            .WithCpuset("x")
            .WithPort(0).WithPort(7).WithPort(7)
            .WithBindMount(Missing, "/data")
            .WithTmpfsMount("tmp")
            .WithFile("/f", "a").WithFile("/f", "b")
            .WaitFor(Wait.ForPort(9));

        var e = Assert.Throws<InvalidContainerSpecException>(builder.Build);

        Assert.Equal(12, e.Errors.Count);
        Assert.Collection(
            e.Errors,
            x => Assert.StartsWith("FromDirectory", x),
            x => Assert.StartsWith("No command", x),
            x => Assert.StartsWith("WithMemoryLimit", x),
            x => Assert.StartsWith("WithCpuLimit", x),
            x => Assert.StartsWith("WithPidsLimit", x),
            x => Assert.StartsWith("WithCpuset", x),
            x => Assert.StartsWith("WithPort(0)", x),
            x => Assert.StartsWith("WithPort(7) is given more than once", x),
            x => Assert.StartsWith("WithBindMount", x),
            x => Assert.StartsWith("WithTmpfsMount(\"tmp\")", x),
            x => Assert.StartsWith("File target \"/f\"", x),
            x => Assert.Contains("port 9 is not published", x));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("0-1")]
    [InlineData("0,1")]
    [InlineData("0-1,3,5-7")]
    public void Build_ValidCpuset_IsAccepted(string cpuset)
    {
        Assert.Equal(cpuset, Valid.WithCpuset(cpuset).Build().Limits.CpusetCpus);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1000")]
    [InlineData("1000:1000")]
    [InlineData("postgres")]
    [InlineData("www-data:www-data")]
    public void Build_ValidUser_IsAccepted(string user)
    {
        Assert.Equal(user, Valid.WithUser(user).Build().User);
    }

    [Fact]
    public void Build_MemoryAtTheMinimum_IsAccepted()
    {
        Assert.Equal(6L << 20, Valid.WithMemoryLimit("6m").Build().Limits.MemoryBytes);
    }

    [Fact]
    public void Build_ReadOnlyRootWithFileUnderWritableMount_IsAccepted()
    {
        var spec = Valid.WithReadOnlyRootFileSystem().WithTmpfsMount("/etc/app").WithFile("/etc/app/conf", "x").Build();

        Assert.Single(spec.Files);
    }

    [Fact]
    public void Build_ExistingHostPaths_AreAccepted()
    {
        var file = Path.Combine(_dir, "f");
        File.WriteAllText(file, "x");

        var spec = Valid.FromDirectory(_dir).WithBindMount(file, "/f").WithCopyOnWriteMount(_dir, "/d").WithFileFrom(file, "/g").Build();

        Assert.Equal(2, spec.Mounts.Count);
    }

    [Fact]
    public void Validate_ASpecMadeByHand_ReportsEveryProblemNamingTheFix()
    {
        var spec = new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromDirectory(Missing),
            Command = ["true"],
            Limits = new ResourceLimits(MemoryBytes: 1024),
            Mounts = [new MountSpec(MountKind.Tmpfs, null, "/t", SizeBytes: 0)],
            Files = [new FileCopySpec("/f", null, null)],
        };

        var e = Assert.Throws<InvalidContainerSpecException>(() => ContainerSpecValidator.Validate(spec));

        Assert.Collection(
            e.Errors,
            x => Assert.Contains("the directory does not exist", x),
            x => Assert.Contains("below the minimum of 6 MiB", x),
            x => Assert.Contains("size 0 must be above zero", x),
            x => Assert.Contains("give either the content or a host file to copy, not neither", x));
    }

    [Fact]
    public void Validate_BackendProblems_JoinTheSameException()
    {
        var spec = new ContainerSpec { RootFileSystem = RootFileSystem.Host, Command = [], Hostname = "-x" };

        var e = Assert.Throws<InvalidContainerSpecException>(() => ContainerSpecValidator.Validate(spec, ["the backend cannot do this: do that"]));

        Assert.Equal(3, e.Errors.Count);
        Assert.Equal("the backend cannot do this: do that", e.Errors[^1]);
    }

    [Fact]
    public void Build_Networks_KeepTheirMeaning()
    {
        var network = new NamedNetwork("backend");

        Assert.Equal(Network.Private, Valid.Build().Network);
        Assert.Equal(NetworkKind.Host, Valid.WithNetwork(Network.Host).Build().Network.Kind);
        Assert.Equal(Network.Named("backend"), Valid.WithNetwork("backend").Build().Network);
        var joined = Valid.WithNetwork(network).Build().Network;
        Assert.Equal((NetworkKind.Named, "backend"), (joined.Kind, joined.Name));
        Assert.Same(network, joined.Source);
    }

    [Fact]
    public void Build_SeveralNetworks_TheFirstIsTheContainersNetwork()
    {
        var spec = Valid.WithNetwork("a").WithNetwork(new NamedNetwork("b")).WithNetworkAliases("db").Build();

        Assert.Equal(Network.Named("a"), spec.Network);
        Assert.Equal(["a", "b"], spec.Networks.Select(n => n.Name));
        Assert.Equal(["db"], spec.NetworkAliases);
        Assert.Equal([Network.Named("x")], (Valid.Build() with { Network = Network.Named("x") }).Networks);
    }

    private sealed record NamedNetwork(string Name) : INetwork
    {
        public Task ExposeHostPortsAsync(int port, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
