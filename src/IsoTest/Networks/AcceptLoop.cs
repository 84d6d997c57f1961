using System.Net.Sockets;

namespace IsoTest;

/// <summary>
/// The one accept loop of the TCP relays (the engine's published ports, the Docker backend's host-port relay); its source
/// is also compiled into IsoTest.Docker, which does not see the core's internals.
/// </summary>
internal static class AcceptLoop
{
    /// <summary>
    /// Hands every connection <paramref name="listener"/> accepts to <paramref name="serve"/>, without waiting for it,
    /// until <paramref name="stop"/> is cancelled or the listener is closed (both end the loop quietly).
    /// </summary>
    public static async Task RunAsync(Socket listener, Func<Socket, Task> serve, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = serve(client);
        }
    }
}
