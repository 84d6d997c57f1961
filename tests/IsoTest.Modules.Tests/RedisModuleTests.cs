using IsoTest.Modules.Redis;
using IsoTest.TestSupport;
using StackExchange.Redis;

namespace IsoTest.Modules.Tests;

/// <summary>
/// The Redis module against real redis-server processes: its image by default on both backends (the Debian image that
/// ISOTEST_REDIS_IMAGE names), the host's redis-server with FromHost() on the engine, a directory root on Docker.
/// </summary>
[Collection(DirectoryImageTests.Name)]
public sealed class RedisModuleTests(Backends backends) : IClassFixture<Backends>, IDisposable
{
    private readonly string _rootfs = Directory.CreateTempSubdirectory("isotest-modules-redis-").FullName;

    public void Dispose() => Directory.Delete(_rootfs, recursive: true);

    /// <summary>The module's two roots on the engine: its image (the default) and the host's programs.</summary>
    public static TheoryData<string> EngineRoots => ["image", "host"];

    private static RedisBuilder On(string root, RedisBuilder redis) => root == "host" ? redis.FromHost() : redis;

    [Theory, MemberData(nameof(EngineRoots))]
    public async Task Engine_SetThenGet(string root)
    {
        await using var redis = await On(root, new RedisBuilder()).WithBackend(backends.Engine).StartAsync();

        Assert.Equal(root == "host" ? RootFileSystem.Host : RootFileSystem.FromImage(DebianImages.Redis), redis.Container.Spec.RootFileSystem);
        await AssertStoresAsync(redis.GetConnectionString());
    }

    [Theory, MemberData(nameof(EngineRoots))]
    public async Task Engine_WithPassword_RefusesClientsWithoutIt(string root)
    {
        await using var redis = await On(root, new RedisBuilder()).WithPassword("s3cret").WithBackend(backends.Engine).StartAsync();

        Assert.EndsWith(",password=s3cret", redis.GetConnectionString(), StringComparison.Ordinal);
        await AssertStoresAsync(redis.GetConnectionString());
        // Straight RESP over TCP: a client without the password is answered NOAUTH.
        var endpoint = redis.Container.GetEndpoint(RedisBuilder.Port);
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(endpoint.Host, endpoint.Port);
        await using var stream = client.GetStream();
        await stream.WriteAsync("PING\r\n"u8.ToArray());
        var buffer = new byte[256];
        var read = await stream.ReadAsync(buffer);
        Assert.StartsWith("-NOAUTH", System.Text.Encoding.ASCII.GetString(buffer, 0, read), StringComparison.Ordinal);
    }

    [Theory, MemberData(nameof(EngineRoots))]
    public async Task Engine_EveryContainer_StartsEmpty(string root)
    {
        await using (var first = await On(root, new RedisBuilder()).WithBackend(backends.Engine).StartAsync())
        {
            await AssertStoresAsync(first.GetConnectionString());
        }

        await using var second = await On(root, new RedisBuilder()).WithBackend(backends.Engine).StartAsync();
        await using var connection = await ConnectionMultiplexer.ConnectAsync(second.GetConnectionString());
        Assert.False(await connection.GetDatabase().KeyExistsAsync("k"));
    }

    [Fact]
    public async Task Engine_MissingImage_NamesTheImageTheVariableAndFromHost()
    {
        // Through Configure, as an IsoTest.Xunit definition uses it: the builder's StartAsync carries the module's hint.
        var definition = new RedisBuilder().WithImage("localhost:1/redis:7").WithBackend(backends.Engine).Configure(new ContainerBuilder());
        var e = await Assert.ThrowsAsync<ImagePullException>(() => definition.StartAsync());

        ModuleImageTests.AssertNamesTheFixes(e.Message, "localhost:1/redis:7", RedisBuilder.ImageVariable);
    }

    [Fact]
    public async Task Docker_Image_SetThenGet()
    {
        await using var redis = await new RedisBuilder().WithPassword("pw").WithBackend(backends.Docker).StartAsync();

        Assert.Equal(RootFileSystem.FromImage(DebianImages.Redis), redis.Container.Spec.RootFileSystem);
        await AssertStoresAsync(redis.GetConnectionString());
    }

    [Fact]
    public async Task Docker_DirectoryRoot_SetThenGet()
    {
        await using var images = await DirectoryImages.SnapshotAsync();
        await HostProgramsRootFs.BuildAsync(_rootfs, ["/usr/bin/redis-server"], []);
        await using var redis = await new RedisBuilder().FromDirectory(_rootfs).WithPassword("pw").WithBackend(backends.Docker).StartAsync();

        await AssertStoresAsync(redis.GetConnectionString());
    }

    private static async Task AssertStoresAsync(string connectionString)
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(connectionString);
        var db = connection.GetDatabase();
        await db.StringSetAsync("k", "from a container");
        Assert.Equal("from a container", (string?)await db.StringGetAsync("k"));
    }
}
