using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Containers;

/// <summary>Bad input gets a clear error naming the problem and the fix, and leaves nothing behind.</summary>
public sealed class BadInputTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    [Fact]
    public async Task MissingRootfs_ErrorNamesTheDirectory()
    {
        var spec = new ContainerSpec { RootFileSystem = RootFileSystem.FromDirectory("/no/such/rootfs"), Command = ["/bin/true"] };

        var error = await Assert.ThrowsAsync<InvalidContainerSpecException>(() => _engine.CreateAsync(spec));

        Assert.Contains("/no/such/rootfs", error.Message);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task BadMountSource_ErrorNamesTheSource()
    {
        var spec = Specs.Host("true") with { Mounts = [new MountSpec(MountKind.Bind, "/no/such/source", "/data")] };

        var error = await Assert.ThrowsAsync<InvalidContainerSpecException>(() => _engine.CreateAsync(spec));

        Assert.Contains("/no/such/source", error.Message);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task UnknownUser_ErrorNamesUserAndPasswd()
    {
        var spec = Specs.Host("true") with { User = "no-such-user-xyz" };

        var error = await Assert.ThrowsAsync<InvalidContainerSpecException>(() => _engine.CreateAsync(spec));

        Assert.Contains("no-such-user-xyz", error.Message);
        Assert.Contains("/etc/passwd", error.Message);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task MemoryBelowKernelMinimum_ResourceLimitError()
    {
        var spec = Specs.Host("true") with { Limits = new ResourceLimits(MemoryBytes: 4096) };

        var error = await Assert.ThrowsAsync<InvalidContainerSpecException>(() => _engine.CreateAsync(spec));

        Assert.Contains("memory", error.Message, StringComparison.OrdinalIgnoreCase);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task NegativeCpus_ResourceLimitError()
    {
        var spec = Specs.Host("true") with { Limits = new ResourceLimits(Cpus: -1) };

        var error = await Assert.ThrowsAsync<InvalidContainerSpecException>(() => _engine.CreateAsync(spec));

        Assert.Contains("cpu", error.Message, StringComparison.OrdinalIgnoreCase);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task NamedNetwork_Unknown_FailsNamingIt()
    {
        var spec = Specs.Host("true") with { Network = Network.Named("backend") };

        var unknown = await Assert.ThrowsAsync<ContainerStartException>(() => _engine.CreateAsync(spec));
        Assert.Contains("There is no network 'backend' in this engine: create it first", unknown.Message);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task Image_FromARegistryThatIsDown_IsAnImagePullExceptionNamingIt()
    {
        // A loopback port nothing listens on: the engine pulls images now, and says why it could not.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var spec = new ContainerSpec { RootFileSystem = RootFileSystem.FromImage($"127.0.0.1:{port}/redis:7"), Command = ["redis-server"] };

        var error = await Assert.ThrowsAsync<ImagePullException>(() => _engine.CreateAsync(spec));

        Assert.Equal($"127.0.0.1:{port}", error.Registry);
        Assert.Contains("refuses connections", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TooManyFiles_ErrorNamesTheAgentsLimit()
    {
        // The agent holds 256 file records; the 257th used to fall through into a copy-on-write mount.
        var files = Enumerable.Range(0, 257).Select(i => new FileCopySpec($"/tmp/f{i}", "x"u8.ToArray(), null)).ToArray();
        var spec = Specs.Host("true") with { Files = files };

        var error = await Assert.ThrowsAsync<ContainerStartException>(() => _engine.CreateAsync(spec));

        Assert.Contains("file: more than 256 records", error.Message);
        await AssertNothingLeftAsync();
    }

    private async Task AssertNothingLeftAsync()
    {
        Assert.Equal(0, _engine.LiveContainers);
        await Leaks.AssertNoContainerCgroupsAsync(_engine);
        Assert.DoesNotContain(Directory.EnumerateFiles(_engine.StateDirectory), f => Path.GetFileName(f) != "lock");
    }
}
