using System.Net;
using System.Net.Sockets;
using System.Text;

namespace IsoTest.Server.Containers;

/// <summary>
/// Testcontainers' resource reaper (the Ryuk image), spoken by the server itself: the image is not in an
/// offline store, and Ryuk's job (remove what a test session left once its client is gone) is the
/// server's own. Port 8080 is a listener in this process. A client sends filter lines
/// (<c>label=key=value</c>, several joined by <c>&amp;</c>) and gets <c>ACK</c> for each; once every client
/// has disconnected and none came back within the reconnection timeout, the containers matching any
/// filter are removed and the reaper exits, as Ryuk does.
/// </summary>
internal sealed class ReaperContainer : IContainer
{
    public const int Port = 8080;

    private readonly Func<IReadOnlyList<KeyValuePair<string, string>>, Task> _reap;
    private readonly TimeSpan _reconnectionTimeout;
    private readonly TimeProvider _clock;
    private readonly List<KeyValuePair<string, string>> _filters = [];
    private readonly List<LogLine> _logs = [];
    private readonly TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private TcpListener? _listener;
    private int _connections;
    private bool _everConnected;
    private CancellationTokenSource? _pendingReap;

    public ReaperContainer(string id, ContainerSpec spec, Func<IReadOnlyList<KeyValuePair<string, string>>, Task> reap, TimeSpan reconnectionTimeout, TimeProvider clock)
    {
        Id = id;
        Name = "ryuk-" + id[..12];
        Spec = spec;
        _reap = reap;
        _reconnectionTimeout = reconnectionTimeout;
        _clock = clock;
    }

    /// <summary>True for the images Testcontainers starts as its reaper (testcontainers/ryuk, any tag or registry).</summary>
    public static bool IsReaperImage(string? image) =>
        image is not null && (image.Split('@')[0].Split(':')[0] is var name) && (name.EndsWith("testcontainers/ryuk", StringComparison.Ordinal) || name.EndsWith("/ryuk", StringComparison.Ordinal) && name.Contains("testcontainers", StringComparison.Ordinal));

    public string Id { get; }

    public string Name { get; }

    public ContainerSpec Spec { get; }

    public ContainerState State { get; private set; } = ContainerState.Created;

    public int? ExitCode { get; private set; }

    public bool OomKilled => false;

    public ContainerEndpoint GetEndpoint(int containerPort) =>
        containerPort == Port && _listener?.LocalEndpoint is IPEndPoint ep
            ? new ContainerEndpoint(ep.Address.ToString(), ep.Port)
            : throw new ArgumentException($"the reaper publishes only port {Port}", nameof(containerPort));

    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        State = ContainerState.Running;
        Log("Started");
        _ = AcceptAsync(_listener);
        return Task.CompletedTask;
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        try
        {
            while (true)
            {
                var client = await listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
                _ = ServeAsync(client);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Stopped.
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        lock (_lock)
        {
            _connections++;
            _everConnected = true;
            _pendingReap?.Cancel();
            _pendingReap = null;
        }

        try
        {
            using (client)
            {
                var stream = client.GetStream();
                using var reader = new StreamReader(stream, Encoding.ASCII);
                while (await reader.ReadLineAsync(_stop.Token).ConfigureAwait(false) is { } line)
                {
                    lock (_lock)
                    {
                        _filters.AddRange(ParseFilters(line));
                    }

                    Log($"Adding {line}");
                    await stream.WriteAsync("ACK\n"u8.ToArray(), _stop.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
        {
            // The client went away; the count below decides what follows.
        }

        CancellationTokenSource? wait = null;
        lock (_lock)
        {
            if (--_connections == 0 && _everConnected && !_stop.IsCancellationRequested)
            {
                wait = _pendingReap = new CancellationTokenSource();
            }
        }

        if (wait is not null)
        {
            _ = ReapAfterTimeoutAsync(wait.Token);
        }
    }

    /// <summary><c>label=a=b&amp;label=c</c>: the label filters of one line (other filter kinds are not used by clients).</summary>
    private static IEnumerable<KeyValuePair<string, string>> ParseFilters(string line) =>
        line.Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(f => Uri.UnescapeDataString(f).Split('=', 2))
            .Where(kv => kv.Length == 2 && kv[0] == "label")
            .Select(kv => kv[1].Split('=', 2) is var label ? new KeyValuePair<string, string>(label[0], label.Length > 1 ? label[1] : "") : default);

    private async Task ReapAfterTimeoutAsync(CancellationToken reconnected)
    {
        try
        {
            await Task.Delay(_reconnectionTimeout, _clock, reconnected).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        List<KeyValuePair<string, string>> filters;
        lock (_lock)
        {
            filters = [.. _filters];
        }

        Log($"Timed out waiting for re-connection; removing what matches {filters.Count} filter(s)");
        await _reap(filters).ConfigureAwait(false);
        Exit(0);
    }

    private void Log(string text)
    {
        lock (_lock)
        {
            _logs.Add(new LogLine(_clock.GetUtcNow(), LogStream.Stdout, text));
        }
    }

    private void Exit(int code)
    {
        if (State != ContainerState.Running)
        {
            return;
        }

        ExitCode = code;
        State = ContainerState.Exited;
        _stop.Cancel();
        _listener?.Stop();
        _exit.TrySetResult(code);
    }

    public Task<ExecResult> ExecAsync(IReadOnlyList<string> command, CancellationToken cancellationToken = default) =>
        throw new InvalidOperationException("the reaper is part of the server: there is no process to exec in");

    public IReadOnlyList<LogLine> GetLogs()
    {
        lock (_lock)
        {
            return [.. _logs];
        }
    }

    public async IAsyncEnumerable<LogLine> FollowLogsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // The reaper logs a handful of lines; polling them is enough.
        var sent = 0;
        while (true)
        {
            var lines = GetLogs();
            for (; sent < lines.Count; sent++)
            {
                yield return lines[sent];
            }

            if (State is ContainerState.Exited or ContainerState.Removed)
            {
                yield break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), _clock, cancellationToken).ConfigureAwait(false);
        }
    }

    public Task<int> WaitForExitAsync(CancellationToken cancellationToken = default) => _exit.Task.WaitAsync(cancellationToken);

    public Task StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        Exit(137);
        return Task.CompletedTask;
    }

    public Task<ContainerStats> GetStatsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(new ContainerStats(null, TimeSpan.Zero));

    public ValueTask DisposeAsync()
    {
        Exit(137);
        State = ContainerState.Removed;
        return ValueTask.CompletedTask;
    }
}
