using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Networking;

/// <summary>Published ports: a host listener relays each connection into the container's network namespace.</summary>
public sealed class PortForwardingTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    // A threaded echo server on 9000 with a deep accept queue (python3 from the host root). Not busybox `nc -ll`:
    // it re-creates its listening socket after each accept, resetting the connections queued on the old one.
    private const string ThreadedEchoServer = """
        import socketserver
        class Echo(socketserver.StreamRequestHandler):
            def handle(self):
                while data := self.request.recv(65536):
                    self.request.sendall(data)
        socketserver.ThreadingTCPServer.request_queue_size = 128
        socketserver.ThreadingTCPServer(("127.0.0.1", 9000), Echo).serve_forever()
        """;

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
        // Not busybox `nc -ll`: it re-creates its listening socket after each accept, resetting the
        // connections queued on the old one, and the agent connects in parallel (as Docker's proxy does).
        await using var echo = await _engine.CreateAsync(Specs.Host("/usr/bin/python3", "-c", ThreadedEchoServer) with { Ports = [9000] });
        await echo.StartAsync();
        await Probe.WaitForPortAsync(echo, 9000);
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

    [Fact]
    public async Task Connect_PortThatNeverAnswers_OtherRequestsAreStillServed()
    {
        // A listener with backlog 0 whose queue is full drops every further SYN: a connect to it hangs
        // for the kernel's SYN retry time (~2 min). The agent completes connects from its loop, so an
        // exec sent after such a connect is answered while the connect is still pending.
        const string script = """
            import os, socket, time
            l = socket.socket(); l.bind(("127.0.0.1", 7000)); l.listen(0)
            fill = []
            for _ in range(3):
                c = socket.socket(); c.setblocking(False); c.connect_ex(("127.0.0.1", 7000)); fill.append(c)
            time.sleep(0.5)
            open("/tmp/full", "w").close()
            time.sleep(600)
            """;
        await using var container = await _engine.CreateAsync(Specs.Host("/usr/bin/python3", "-c", script));
        await container.StartAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while ((await container.ExecAsync(["test", "-e", "/tmp/full"], cts.Token)).ExitCode != 0)
        {
            await Task.Delay(20, cts.Token);
        }

        var hanging = ((IContainerProbes)container).IsPortOpenAsync(7000, CancellationToken.None);
        var exec = await container.ExecAsync(["echo", "served"], cts.Token);

        Assert.Equal("served\n", exec.Stdout);
        Assert.False(hanging.IsCompleted, "the connect to a full backlog should still be pending");
        await container.StopAsync(TimeSpan.FromSeconds(1));
        Assert.False(await hanging.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Relay_ServerHalfClosesFirst_ClientStillSendsAndIsHeard()
    {
        const string server = """
            import socket
            l = socket.socket(); l.bind(("127.0.0.1", 9000)); l.listen(8)
            while True:  # the first connection is the readiness probe's, which closes at once
                c, _ = l.accept()
                try:
                    c.sendall(b"greeting"); c.shutdown(socket.SHUT_WR)
                    data = b""
                    while d := c.recv(65536):
                        data += d
                    if data:
                        open("/tmp/got", "wb").write(data)
                except OSError:
                    pass
            """;
        await using var container = await StartPythonAsync(server);
        using var client = await ConnectAsync(container.GetEndpoint(9000));

        Assert.Equal("greeting", System.Text.Encoding.UTF8.GetString(await ReadToEndAsync(client)));
        await client.SendAsync("after eof"u8.ToArray());
        client.Shutdown(SocketShutdown.Send);

        Assert.Equal("after eof", await WaitForFileAsync(container, "/tmp/got"));
    }

    [Fact]
    public async Task Relay_ServerResets_ClientSeesReset()
    {
        const string server = """
            import socket, struct
            l = socket.socket(); l.bind(("127.0.0.1", 9000)); l.listen(8)
            while True:  # the first connection is the readiness probe's
                c, _ = l.accept(); c.recv(1)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
            """;
        await using var container = await StartPythonAsync(server);
        using var client = await ConnectAsync(container.GetEndpoint(9000));

        await client.SendAsync("x"u8.ToArray());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var error = await Assert.ThrowsAsync<SocketException>(async () => await client.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token));

        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
    }

    [Fact]
    public async Task Relay_ClientResets_ServerSeesReset()
    {
        const string server = """
            import socket
            l = socket.socket(); l.bind(("127.0.0.1", 9000)); l.listen(8)
            while True:  # the first connection is the readiness probe's: it sends nothing
                c, _ = l.accept()
                try:
                    got = b""
                    while d := c.recv(65536):
                        got += d
                    result = "eof"
                except ConnectionResetError:
                    result = "reset"
                if got or result == "reset":
                    open("/tmp/got", "w").write(result)
            """;
        await using var container = await StartPythonAsync(server);
        using (var client = await ConnectAsync(container.GetEndpoint(9000)))
        {
            await client.SendAsync("x"u8.ToArray());
            client.LingerState = new LingerOption(true, 0); // close sends RST
        }

        Assert.Equal("reset", await WaitForFileAsync(container, "/tmp/got"));
    }

    [Fact]
    public async Task Relay_ContainerExitsWhileConnected_ClientSeesTheEnd()
    {
        await using var echo = await StartEchoAsync();
        using var client = await ConnectAsync(echo.GetEndpoint(9000));
        await client.SendAsync("ping"u8.ToArray());
        var buffer = new byte[4];
        Assert.Equal(4, await client.ReceiveAsync(buffer, SocketFlags.None));

        await echo.StopAsync(TimeSpan.FromSeconds(1));

        Assert.Empty(await ReadToEndAsync(client)); // EOF or reset, within ReadToEndAsync's minute rather than never
    }

    [Fact]
    public async Task Relay_ConnectionsEndAndContainerGoes_NoSocketIsLeft()
    {
        var container = await StartPythonAsync(ThreadedEchoServer);
        var port = container.GetEndpoint(9000).Port;
        for (var i = 0; i < 20; i++)
        {
            using var client = await ConnectAsync(container.GetEndpoint(9000));
            await client.SendAsync("ping"u8.ToArray());
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal("ping"u8.ToArray(), await ReadToEndAsync(client));
        }

        // A relay that kept a finished connection would hold its host-side socket in CLOSE_WAIT.
        await WaitUntilAsync(() => OpenConnections(port) == 0, "the 20 finished connections' host-side sockets to close");
        using var idle = await ConnectAsync(container.GetEndpoint(9000));   // open while the container goes
        await WaitUntilAsync(() => OpenConnections(port) == 2, "the open connection to be relayed");  // the client's end and the relay's

        await container.DisposeAsync();

        Assert.Empty(await ReadToEndAsync(idle));   // EOF or reset: the relay let go of the connection
        idle.Close();
        await WaitUntilAsync(() => OpenConnections(port) == 0, "both ends of the connection open at dispose to close");
        Assert.False(File.ReadAllLines("/proc/net/tcp").Skip(1).Any(l => LocalPort(l) == port && State(l) == "0A"), "the listener should be closed");
    }

    private async Task<IContainer> StartPythonAsync(string script)
    {
        var container = await _engine.CreateAsync(Specs.Host("/usr/bin/python3", "-c", script) with { Ports = [9000] });
        await container.StartAsync();
        await Probe.WaitForPortAsync(container, 9000);
        return container;
    }

    private static async Task<string> WaitForFileAsync(IContainer container, string path)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var result = await container.ExecAsync(["cat", path], cts.Token);
            if (result.ExitCode == 0)
            {
                return result.Stdout;
            }

            await Task.Delay(20, cts.Token);
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Host sockets of connections to the published port, either end (the client's, the relay's), that are neither listening nor
    /// in TIME_WAIT or FIN_WAIT2 (a leaked one stays ESTABLISHED or CLOSE_WAIT).
    /// </summary>
    private static int OpenConnections(int port) =>
        File.ReadAllLines("/proc/net/tcp").Skip(1).Count(l => (LocalPort(l) == port || RemotePort(l) == port) && State(l) is not ("0A" or "06" or "05"));

    private static int LocalPort(string line) => Convert.ToInt32(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1].Split(':')[1], 16);

    private static int RemotePort(string line) => Convert.ToInt32(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2].Split(':')[1], 16);

    private static string State(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3];

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
