using System.Net;
using System.Net.Sockets;
using System.Text;
using IsoTest.Tests.Fakes;
using Xunit;

namespace IsoTest.Tests.Waits;

/// <summary>Wait.ForHttp against a real HTTP server on 127.0.0.1 (a fake container points at it).</summary>
public sealed class HttpWaitStrategyTests : IAsyncDisposable
{
    private readonly TimerLog _time = new();
    private readonly TinyHttpServer _server = new();
    private readonly FakeContainer _container = new();

    public HttpWaitStrategyTests()
    {
        _container.MapPort(8080, new ContainerEndpoint("127.0.0.1", _server.Port));
    }

    [Fact]
    public async Task ForHttp_ServerAnswers200_IsReady()
    {
        _server.Respond = _ => (200, "ok");

        await Wait.ForHttp("/health", 8080).WaitAsync(_container, _time, default);

        Assert.Equal(["GET /health HTTP/1.1"], _server.RequestLines);
    }

    [Fact]
    public async Task ForHttp_ServerStarting_RetriesUntilExpectedStatus()
    {
        _server.Respond = n => n < 3 ? (503, "starting") : (204, "");

        var wait = Wait.ForHttp("/ready?deep=1", 8080, HttpStatusCode.NoContent).WaitAsync(_container, _time, default);
        await _time.RunPausesUntilAsync(wait);

        await wait;
        Assert.Equal(3, _server.RequestLines.Count);
        Assert.All(_server.RequestLines, line => Assert.Equal("GET /ready?deep=1 HTTP/1.1", line));
    }

    [Fact]
    public async Task ForHttp_Predicate_SeesStatusAndBody()
    {
        _server.Respond = n => (200, n < 2 ? "{\"status\":\"starting\"}" : "{\"status\":\"up\"}");

        var wait = Wait.ForHttp("/status", 8080, (status, body) => status == HttpStatusCode.OK && body.Contains("\"up\"")).WaitAsync(_container, _time, default);
        await _time.RunPausesUntilAsync(wait);

        await wait;
        Assert.Equal(2, _server.RequestLines.Count);
    }

    [Fact]
    public async Task ForHttp_Timeout_ReportsTheLastAnswer()
    {
        _server.Respond = _ => (503, "starting");

        var wait = Wait.ForHttp("/health", 8080).WithTimeout(TimeSpan.FromSeconds(2)).WaitAsync(_container, _time, default);
        await _time.NextPauseAsync();
        _time.Clock.Advance(TimeSpan.FromSeconds(2));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => wait);
        Assert.Equal("HTTP GET /health on port 8080 answering 200", e.Condition);
        Assert.Contains($"http://127.0.0.1:{_server.Port}/health answered 503", e.Message);
    }

    [Fact]
    public async Task ForHttp_CheapPortProbe_SendsNoRequestUntilThePortListensInside()
    {
        _server.Respond = n => n < 2 ? (503, "starting") : (200, "ok");
        await using var container = new FakeProbingContainer();
        container.MapPort(8080, new ContainerEndpoint("127.0.0.1", _server.Port));

        var wait = Wait.ForHttp("/health", 8080).WaitAsync(container, _time, default);
        for (var i = 0; i < 3; i++)
        {
            _time.Clock.Advance(await _time.NextPauseAsync());
        }

        // Three pauses, four probes inside, and the server (listening on the host all along) saw nothing.
        Assert.Equal(4, container.PortProbes);
        Assert.Empty(_server.RequestLines);

        container.PortOpen = true;
        await _time.RunPausesUntilAsync(wait);

        await wait;
        // Listening seen once: the 503 that followed was retried by request alone, not by asking the port again.
        Assert.Equal(5, container.PortProbes);
        Assert.Equal(2, _server.RequestLines.Count);
    }

    [Fact]
    public async Task ForHttp_PortNeverListensInside_TimeoutSaysSoAndNoRequestWasSent()
    {
        await using var container = new FakeProbingContainer();
        container.MapPort(8080, new ContainerEndpoint("127.0.0.1", _server.Port));

        var wait = Wait.ForHttp("/health", 8080).WithTimeout(TimeSpan.FromSeconds(2)).WaitAsync(container, _time, default);
        await _time.NextPauseAsync();
        _time.Clock.Advance(TimeSpan.FromSeconds(2));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => wait);
        Assert.Contains("nothing listens on port 8080 inside the container yet", e.Message);
        Assert.Empty(_server.RequestLines);
    }

    [Fact]
    public async Task ForHttp_DearPortProbe_IsNotAskedAndRequestsGoStraightOut()
    {
        _server.Respond = _ => (200, "ok");
        await using var container = new FakeProbingContainer { PortProbeIsCheap = false };
        container.MapPort(8080, new ContainerEndpoint("127.0.0.1", _server.Port));

        await Wait.ForHttp("/health", 8080).WaitAsync(container, _time, default);

        Assert.Equal(0, container.PortProbes);
        Assert.Equal(["GET /health HTTP/1.1"], _server.RequestLines);
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await _container.DisposeAsync();
    }

    /// <summary>Answers each request with a scripted status and body, then closes the connection.</summary>
    private sealed class TinyHttpServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private readonly object _gate = new();
        private readonly List<string> _requestLines = [];

        public TinyHttpServer()
        {
            _listener.Start();
            _loop = Task.Run(ServeAsync);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        /// <summary>Given the 1-based request number, the status and body to send.</summary>
        public Func<int, (int Status, string Body)> Respond { get; set; } = _ => (200, "");

        public IReadOnlyList<string> RequestLines
        {
            get
            {
                lock (_gate)
                {
                    return [.. _requestLines];
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _loop;
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }

            _stop.Dispose();
        }

        private async Task ServeAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                var stream = client.GetStream();
                var request = new StringBuilder();
                var buffer = new byte[4096];
                while (!request.ToString().Contains("\r\n\r\n"))
                {
                    var read = await stream.ReadAsync(buffer, _stop.Token);
                    if (read == 0)
                    {
                        break;
                    }

                    request.Append(Encoding.ASCII.GetString(buffer, 0, read));
                }

                int number;
                lock (_gate)
                {
                    _requestLines.Add(request.ToString().Split("\r\n")[0]);
                    number = _requestLines.Count;
                }

                var (status, body) = Respond(number);
                var bytes = Encoding.UTF8.GetBytes(body);
                var head = $"HTTP/1.1 {status} Status{status}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head), _stop.Token);
                await stream.WriteAsync(bytes, _stop.Token);
            }
        }
    }
}
