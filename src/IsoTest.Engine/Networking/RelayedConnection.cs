using System.Net.Sockets;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.Networking;

/// <summary>
/// One connection a <see cref="PortForwarder"/> relays: a dedicated thread per direction splicing in the kernel
/// (<see cref="SplicePump"/>), not the thread pool's: each blocks in splice(2) for the connection's life, and 64
/// parallel connections would starve the pool (<see cref="RelayThreads"/> keeps them parked between connections). EOF is passed on as a half-close, so either side may finish sending first. When a
/// direction breaks (a reset, or <see cref="Abort"/>), both sockets close with a reset, so neither peer waits on a
/// connection that can no longer carry data, and a reset reaches the other side as a reset.
/// </summary>
internal sealed class RelayedConnection
{
    private readonly Socket _client;
    private readonly Socket _inside;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running = 2;
    private int _broken;

    public RelayedConnection(Socket client, Socket inside)
    {
        (_client, _inside) = (client, inside);
        SplicePump.MakeBlocking(client);
        SplicePump.MakeBlocking(inside);
        // The client speaks first in most protocols: its direction starts first.
        RelayThreads.Run(() => Pump(client, inside));
        RelayThreads.Run(() => Pump(inside, client));
    }

    /// <summary>Completes once both directions ended and both sockets are closed.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Breaks the connection (the forwarder is going away): both blocked splices return, both peers see a reset.</summary>
    public void Abort() => Break(SocketShutdown.Both);

    // SHUT_RD sends nothing and wakes a splice blocked reading, so after a reset the other peer gets our RST
    // rather than a FIN first. A splice blocked writing to a peer that does not read only wakes on SHUT_WR,
    // which the forwarder's dispose adds (a FIN, then the RST).
    private void Break(SocketShutdown how)
    {
        Volatile.Write(ref _broken, 1);
        ShutdownQuietly(_client, how);
        ShutdownQuietly(_inside, how);
    }

    private void Pump(Socket from, Socket to)
    {
        PumpEnd end;
        try
        {
            end = SplicePump.Run(from, to);
        }
        catch (Exception e) when (e is NativeException or ObjectDisposedException or SocketException)
        {
            end = PumpEnd.Broken;   // pipe2 refused (descriptor limit): nothing can be relayed
        }

        if (end == PumpEnd.Broken)
        {
            Break(SocketShutdown.Receive);   // a peer reset: if the other direction is blocked writing, that peer's socket has failed too
        }

        if (Interlocked.Decrement(ref _running) == 0)
        {
            Close();
        }
    }

    private void Close()
    {
        if (Volatile.Read(ref _broken) != 0)
        {
            // Linger 0: close sends RST, so a peer mid-conversation learns the connection died instead of reading a clean EOF.
            ResetOnClose(_client);
            ResetOnClose(_inside);
        }

        _client.Dispose();
        _inside.Dispose();
        _completion.TrySetResult();
    }

    private static void ShutdownQuietly(Socket socket, SocketShutdown how)
    {
        try
        {
            socket.Shutdown(how);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Not connected any more: its splice has returned already.
        }
    }

    private static void ResetOnClose(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }
}
