using System.Net.Sockets;

namespace IsoTest.Waits;

/// <summary>Ready when something accepts TCP connections on a port inside the container.</summary>
internal sealed class PortWaitStrategy(int port) : PollingWaitStrategy
{
    public int Port { get; } = port;

    internal override IEnumerable<int> PortsUsed => [Port];

    public override string ToString() => $"port {Port} accepting connections";

    private protected override async Task<bool> ProbeAsync(WaitAttempt attempt, CancellationToken cancellationToken)
    {
        if (attempt.Container is IContainerProbes probes)
        {
            if (await probes.IsPortOpenAsync(Port, cancellationToken).ConfigureAwait(false))
            {
                return true;
            }

            attempt.LastResult = $"nothing listens on port {Port}";
            return false;
        }

        // Without a probe inside the container, the published endpoint is the next best thing.
        var endpoint = attempt.Container.GetEndpoint(Port);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endpoint.Host, endpoint.Port, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (SocketException e)
        {
            attempt.LastResult = $"{endpoint}: {e.Message}";
            return false;
        }
    }
}
