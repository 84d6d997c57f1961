using IsoTest.Modules.Redis;
using StackExchange.Redis;

namespace IsoTest.Modules.Tests;

/// <summary>The Redis module against real redis-server processes, on the engine (host programs) and on Docker (a directory root).</summary>
[Collection(DirectoryImageTests.Name)]
public sealed class RedisModuleTests(Backends backends) : IClassFixture<Backends>, IDisposable
{
    private readonly string _rootfs = Directory.CreateTempSubdirectory("isotest-modules-redis-").FullName;

    public void Dispose() => Directory.Delete(_rootfs, recursive: true);

    [Fact]
    public async Task Engine_DefaultRoot_IsTheHostsRedis_SetThenGet()
    {
        await using var redis = await new RedisBuilder().WithBackend(backends.Engine).StartAsync();

        Assert.Equal(RootFileSystem.Host, redis.Container.Spec.RootFileSystem);
        await AssertStoresAsync(redis.GetConnectionString());
    }

    [Fact]
    public async Task Engine_WithPassword_RefusesClientsWithoutIt()
    {
        await using var redis = await new RedisBuilder().FromHost().WithPassword("s3cret").WithBackend(backends.Engine).StartAsync();

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

    [Fact]
    public async Task Engine_EveryContainer_StartsEmpty()
    {
        await using (var first = await new RedisBuilder().WithBackend(backends.Engine).StartAsync())
        {
            await AssertStoresAsync(first.GetConnectionString());
        }

        await using var second = await new RedisBuilder().WithBackend(backends.Engine).StartAsync();
        await using var connection = await ConnectionMultiplexer.ConnectAsync(second.GetConnectionString());
        Assert.False(await connection.GetDatabase().KeyExistsAsync("k"));
    }

    [Fact]
    public async Task Docker_DirectoryRoot_SetThenGet()
    {
        await using var images = await DirectoryImages.SnapshotAsync();
        await HostProgramsRootFs.BuildAsync(_rootfs, ["/usr/bin/redis-server"], []);
        await using var redis = await new RedisBuilder().FromDirectory(_rootfs).WithPassword("pw").WithBackend(backends.Docker).StartAsync();

        await AssertStoresAsync(redis.GetConnectionString());
    }

    [Fact]
    public async Task Docker_DefaultRoot_IsTheRedisImage()
    {
        // Nothing is started: what the module asks Docker for is the spec (there is no registry here to pull redis:7 from).
        var spec = new RedisBuilder().WithBackend(backends.Docker).Configure(new ContainerBuilder()).Build();
        Assert.Equal(RootFileSystem.FromImage(RedisBuilder.DefaultImage), spec.RootFileSystem);
        Assert.Equal("redis-server", spec.Command[0]);
    }

    private static async Task AssertStoresAsync(string connectionString)
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(connectionString);
        var db = connection.GetDatabase();
        await db.StringSetAsync("k", "from a container");
        Assert.Equal("from a container", (string?)await db.StringGetAsync("k"));
    }
}
