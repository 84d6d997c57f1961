using System.Net.Sockets;
using System.Text;

namespace IsoTest.Examples.Redis;

/// <summary>
/// A readiness wait of one's own (Testcontainers' IWaitUntil): ready when Redis answers PING with PONG on
/// the published port, which says more than its log line does. One check; IsoTest polls it, with the
/// usual back-off, exit and timeout handling.
/// </summary>
public sealed class RedisPingWait(int port) : WaitStrategy
{
    public override string ToString() => $"redis answering PING on port {port}";

    protected override async Task<bool> UntilAsync(IContainer container, CancellationToken cancellationToken)
    {
        var endpoint = container.GetEndpoint(port);
        using var client = new TcpClient();
        await client.ConnectAsync(endpoint.Host, endpoint.Port, cancellationToken);
        var stream = client.GetStream();
        await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken);
        var reply = new byte[16];
        var n = await stream.ReadAsync(reply, cancellationToken);
        return Encoding.ASCII.GetString(reply, 0, n) == "+PONG\r\n";
    }
}

/// <summary>The same Redis, ready once it answers PING (rather than once it logged that it is).</summary>
public sealed class PingedRedis : ContainerDefinition
{
    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        new Redis().Configure(builder).WaitFor(new RedisPingWait(Redis.Port));
}
