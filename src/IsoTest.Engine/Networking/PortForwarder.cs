using System.Buffers;
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
    private const int BufferSize = 128 * 1024;
    private readonly Socket _listener;
    private readonly Func<CancellationToken, Task<Socket?>> _connectInside;
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<Socket> _open = [];
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
        Track(client);   // from the accept on: a dispose during the inside connect resets it too
        try
        {
            inside = await _connectInside(_stop.Token).ConfigureAwait(false);
            if (inside is null)
            {
                return; // nothing listens inside: close the client, as a refused connection would
            }

            inside.NoDelay = true;
            Track(inside);
            await Task.WhenAll(PumpAsync(client, inside), PumpAsync(inside, client)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or IOException)
        {
        }
        finally
        {
            Untrack(client, inside);
            client.Dispose();
            inside?.Dispose();
        }
    }

    /// <summary>Copies until EOF, then half-closes the other side so the peer sees EOF too.</summary>
    private static async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None).ConfigureAwait(false);
            }

            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // One side reset: reset the other too, so neither hangs, and its peer reads a reset rather than a clean EOF.
            Reset(from);
            Reset(to);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Closes with linger 0, so the kernel sends RST: the peer learns the connection died instead of reading EOF.</summary>
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed (the other direction reset it first).
        }

        socket.Dispose();
    }

    private void Track(Socket socket)
    {
        lock (_lock)
        {
            _open.Add(socket);
        }
    }

    private void Untrack(Socket client, Socket? inside)
    {
        lock (_lock)
        {
            _open.Remove(client);
            if (inside is not null)
            {
                _open.Remove(inside);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        Socket[] open;
        lock (_lock)
        {
            open = [.. _open];
        }

        foreach (var socket in open)
        {
            Reset(socket);   // the container is going: its open connections end as a peer that died would end them
        }

        await _acceptLoop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
