using System.Net.Sockets;
using System.Text;
using Xunit;

namespace IsoTest.Xunit.Tests;

/// <summary>A real redis-server from the host, isolated by the default backend (the built-in engine here).</summary>
public sealed class Redis : ContainerDefinition
{
    public override ContainerBuilder Configure(ContainerBuilder builder) => builder
        .FromHost()
        .WithCommand("redis-server", "--port", "6379", "--save", "", "--appendonly", "no")
        .WithMemoryLimit("64m")
        .WithPort(6379)
        .WaitFor(Wait.ForPort(6379));
}

/// <summary>
/// These tests run through the real runner (dotnet test → xunit.runner.visualstudio → [assembly: UseIsoTest]):
/// a [Fact] with an IContainer parameter, and a class whose constructor takes a shared container.
/// </summary>
public class RealContainerTests
{
    [Fact, ContainerFixture(typeof(Redis))]
    public async Task PerTestRedis_AnswersPingThroughItsEndpoint(IContainer redis)
    {
        Assert.Equal(ContainerState.Running, redis.State);
        Assert.Equal("+PONG", await RedisClient.SendAsync(redis.GetEndpoint(6379), "PING"));
    }

    [Fact]
    [ContainerFixture(typeof(Redis), Name = "primary")]
    [ContainerFixture(typeof(Redis), Name = "replica")]
    public async Task TwoRedises_AreSeparateServers(IContainer primary, IContainer replica)
    {
        Assert.Equal("+OK", await RedisClient.SendAsync(primary.GetEndpoint(6379), "SET k primary"));
        Assert.Equal("$-1", await RedisClient.SendAsync(replica.GetEndpoint(6379), "GET k"));
    }
}

[ContainerFixture(typeof(Redis))]
public class SharedRedisTests(IContainer redis)
{
    [Fact]
    public async Task Write() => Assert.Equal(":1", await RedisClient.SendAsync(redis.GetEndpoint(6379), "SADD writers " + Guid.NewGuid().ToString("N")));

    [Fact]
    public async Task ServerIsUp() => Assert.Equal("+PONG", await RedisClient.SendAsync(redis.GetEndpoint(6379), "PING"));
}

internal static class RedisClient
{
    /// <summary>Sends one inline command and returns the first line of the reply.</summary>
    public static async Task<string> SendAsync(ContainerEndpoint endpoint, string command)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(endpoint.Host, endpoint.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return await reader.ReadLineAsync() ?? "";
    }
}
