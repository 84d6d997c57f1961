using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Networking;

/// <summary>Published ports: a host listener relays each connection into the container's network namespace.</summary>
public sealed class PortForwardingTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    /// <summary>An echo server (one `cat` per connection) inside a private network namespace.</summary>
    private async Task<IContainer> StartEchoAsync(int port = 9000)
    {
        var container = await _engine.CreateAsync(Specs.Host("busybox", "nc", "-ll", "-p", port.ToString(), "-e", "cat") with { Ports = [port] });
        await container.StartAsync();
        await Probe.WaitForPortAsync(container, port);
        return container;
    }

    [Fact]
    public async Task Relay_HalfClose_PeerSeesEofAndAnswersInFull()
    {
        await using var echo = await StartEchoAsync();
        using var client = await ConnectAsync(echo.GetEndpoint(9000));

        await client.SendAsync("hello"u8.ToArray());
        client.Shutdown(SocketShutdown.Send); // cat only exits (and closes) once it sees this EOF

        Assert.Equal("hello", System.Text.Encoding.UTF8.GetString(await ReadToEndAsync(client)));
    }

    [Fact]
    public async Task Relay_LargeTransfer_ArrivesIntactBothWays()
    {
        await using var echo = await StartEchoAsync();
        using var client = await ConnectAsync(echo.GetEndpoint(9000));
        var payload = RandomNumberGenerator.GetBytes(32 << 20);

        var reading = ReadToEndAsync(client);
        await client.SendAsync(payload);
        client.Shutdown(SocketShutdown.Send);
        var back = await reading;

        Assert.Equal(payload.Length, back.Length);
        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(back));
    }

    [Fact]
    public async Task Relay_ManyParallelConnections_EachGetsItsOwnAnswer()
    {
        await using var echo = await StartEchoAsync();
        var endpoint = echo.GetEndpoint(9000);

        var answers = await Task.WhenAll(Enumerable.Range(0, 64).Select(async i =>
        {
            using var client = await ConnectAsync(endpoint);
            var message = System.Text.Encoding.UTF8.GetBytes($"connection {i} " + new string('x', 10_000));
            var reading = ReadToEndAsync(client);
            await client.SendAsync(message);
            client.Shutdown(SocketShutdown.Send);
            return (Sent: message, Received: await reading);
        }));

        Assert.All(answers, a => Assert.Equal(a.Sent, a.Received));
    }

    [Fact]
    public async Task Relay_NothingListensInside_ConnectionIsClosed()
    {
        await using var idle = await _engine.CreateAsync(Specs.Host("sleep", "30") with { Ports = [7777] });
        await idle.StartAsync();
        using var client = await ConnectAsync(idle.GetEndpoint(7777));

        var data = await ReadToEndAsync(client);

        Assert.Empty(data);
    }

    [Fact]
    public async Task Listener_GoesAwayWithTheContainer()
    {
        var echo = await StartEchoAsync();
        var endpoint = echo.GetEndpoint(9000);

        await echo.DisposeAsync();

        var error = await Assert.ThrowsAsync<SocketException>(() => ConnectAsync(endpoint));
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    [Fact]
    public async Task Ports_TwoContainersListenOnTheSamePort()
    {
        await using var first = await StartEchoAsync(5432);
        await using var second = await StartEchoAsync(5432);

        Assert.NotEqual(first.GetEndpoint(5432).Port, second.GetEndpoint(5432).Port);
        foreach (var container in new[] { first, second })
        {
            using var client = await ConnectAsync(container.GetEndpoint(5432));
            await client.SendAsync("ping"u8.ToArray());
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal("ping"u8.ToArray(), await ReadToEndAsync(client));
        }
    }

    [Fact]
    public async Task Http_BusyboxHttpdIsReachableThroughTheEndpoint()
    {
        var spec = Specs.Shell("mkdir -p /tmp/www && echo served > /tmp/www/index.html && exec busybox httpd -f -p 8080 -h /tmp/www") with { Ports = [8080] };
        await using var web = await _engine.CreateAsync(spec);
        await web.StartAsync();
        await Probe.WaitForPortAsync(web, 8080);
        using var http = new HttpClient();

        var body = await http.GetStringAsync(new Uri(web.GetEndpoint(8080).ToUri(), "index.html"));

        Assert.Equal("served\n", body);
    }

    [Fact]
    public async Task GetEndpoint_UndeclaredPort_SaysHowToDeclareIt()
    {
        await using var container = await _engine.CreateAsync(Specs.Host("true"));

        var error = Assert.Throws<ArgumentException>(() => container.GetEndpoint(1234));

        Assert.Contains("WithPort(1234)", error.Message);
    }

    private static async Task<Socket> ConnectAsync(ContainerEndpoint endpoint)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(IPAddress.Parse(endpoint.Host), endpoint.Port);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int n;
        try
        {
            while ((n = await socket.ReceiveAsync(chunk, SocketFlags.None, cts.Token)) > 0)
            {
                buffer.Write(chunk, 0, n);
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }

        return buffer.ToArray();
    }
}
