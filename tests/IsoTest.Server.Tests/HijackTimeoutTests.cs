using System.Net.Sockets;
using System.Text;

namespace IsoTest.Server.Tests;

/// <summary>A hijack request (attach, exec start) that stops arriving does not hold its connection for ever.</summary>
public sealed class HijackTimeoutTests : IAsyncLifetime
{
    private string _directory = "";
    private DockerApiServer _server = null!;

    private string Socket => Path.Combine(_directory, "docker.sock");

    public async Task InitializeAsync()
    {
        _directory = Directory.CreateTempSubdirectory("isotest-hijack-timeout-").FullName;
        _server = await DockerApiServer.StartAsync(new DockerApiServerOptions
        {
            Hosts = ["unix://" + Socket],
            ImageStore = Path.Combine(_directory, "images"),
            HijackRequestTimeout = TimeSpan.FromSeconds(1),
        });
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        IsoTest.Engine.Images.ImageStore.RemoveTree(_directory);
    }

    [Fact]
    public async Task ExecStart_BodyCutShortAndHeldOpen_Is408NamingTheBody()
    {
        var answer = await SendAsync("POST /v1.44/exec/abc/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 40\r\n\r\n{\"Detach\":");

        Assert.StartsWith("HTTP/1.1 408 ", answer);
        Assert.Contains("the request body did not arrive within 1 s (Content-Length 40)", answer);
    }

    [Fact]
    public async Task Attach_HeadCutShortAndHeldOpen_ConnectionIsClosed()
    {
        var answer = await SendAsync("POST /v1.44/containers/abc/attach?stream=1 HTTP/1.1\r\nHost: d\r\nUpgrade: tcp\r\n");

        Assert.Equal("", answer);   // no head to answer: the connection is closed
    }

    /// <summary>Sends <paramref name="request"/> and keeps the connection open; what the server sent before it closed it.</summary>
    private async Task<string> SendAsync(string request)
    {
        using var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(Socket));
        await socket.SendAsync(Encoding.ASCII.GetBytes(request));
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var received = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, patience.Token)) > 0)
        {
            received.Write(buffer, 0, n);
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }
}
