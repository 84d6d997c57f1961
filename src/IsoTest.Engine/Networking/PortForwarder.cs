using System.Net;
using System.Net.Sockets;

namespace IsoTest.Engine.Networking;

/// <summary>
/// Publishes one container port on 127.0.0.1:&lt;ephemeral&gt; (or a fixed port). Each accepted connection is relayed to a
/// socket the init agent created inside the container's network namespace and handed over with
/// SCM_RIGHTS — no setns from .NET, so it works rootless too (DESIGN.md "Networking").
/// </summary>
internal sealed class PortForwarder : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly Func<CancellationToken, Task<Socket?>> _connectInside;
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<RelayedConnection> _open = [];
    private readonly Lock _lock = new();
    private Task _acceptLoop = Task.CompletedTask;

    /// <summary>Listens on 127.0.0.1:<paramref name="hostPort"/> (0: an ephemeral port).</summary>
    /// <exception cref="SocketException">The port is taken (AddressAlreadyInUse) or privileged (AccessDenied).</exception>
    public PortForwarder(int containerPort, int hostPort, Func<CancellationToken, Task<Socket?>> connectInside)
        : this(containerPort, Loopback(hostPort), connectInside)
    {
    }

    /// <summary>Relays what <paramref name="listener"/> (bound and listening, in any network namespace) accepts; it is owned here.</summary>
    public PortForwarder(int containerPort, Socket listener, Func<CancellationToken, Task<Socket?>> connectInside)
    {
        ContainerPort = containerPort;
        _connectInside = connectInside;
        _listener = listener;
        HostPort = ((IPEndPoint)_listener.LocalEndPoint!).Port;
    }

    private static Socket Loopback(int port)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
            listener.Listen(512);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    public int ContainerPort { get; }

    public int HostPort { get; }

    public void Start() => _acceptLoop = AcceptLoop.RunAsync(_listener, RelayAsync, _stop.Token);

    private async Task RelayAsync(Socket client)
    {
        client.NoDelay = true;
        Socket? inside = null;
        try
        {
            inside = await _connectInside(_stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or IOException)
        {
        }

        if (inside is null)
        {
            client.Dispose(); // nothing listens inside: close the client, as a refused connection would
            return;
        }

        inside.NoDelay = true;
        var connection = new RelayedConnection(client, inside);
        lock (_lock)
        {
            if (_stop.IsCancellationRequested)
            {
                connection.Abort();
            }

            _open.Add(connection);
        }

        await connection.Completion.ConfigureAwait(false);
        lock (_lock)
        {
            _open.Remove(connection);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        RelayedConnection[] open;
        lock (_lock)
        {
            open = [.. _open];
        }

        foreach (var connection in open)
        {
            connection.Abort();
        }

        await _acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(open.Select(c => c.Completion)).ConfigureAwait(false); // every relay thread has ended and closed its sockets
        _stop.Dispose();
    }
}
