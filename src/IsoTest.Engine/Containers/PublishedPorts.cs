using System.Net.Sockets;
using IsoTest.Engine.Networking;

namespace IsoTest.Engine.Containers;

/// <summary>
/// A container's published ports: with a network namespace of its own, a forwarder per port on
/// 127.0.0.1:&lt;ephemeral&gt; that relays each connection to one the agent opens inside; on the host's
/// network, the port itself. Forwarders live as long as the container, so a restart keeps its host ports.
/// </summary>
internal sealed class PublishedPorts : IAsyncDisposable
{
    private readonly Dictionary<int, PortForwarder> _forwarders = [];
    private readonly IReadOnlyList<int> _ports;
    private int _started;
    private int _disposed;

    public PublishedPorts(IReadOnlyList<int> ports, bool forward, Func<int, CancellationToken, Task<Socket?>> connectInside)
    {
        _ports = ports;
        if (forward)
        {
            foreach (var port in ports.Distinct())
            {
                _forwarders[port] = new PortForwarder(port, ct => connectInside(port, ct));
            }
        }
    }

    /// <summary>Starts accepting (once: a restarted container's forwarders are already accepting).</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            foreach (var forwarder in _forwarders.Values)
            {
                forwarder.Start();
            }
        }
    }

    public ContainerEndpoint Endpoint(int containerPort)
    {
        if (!_ports.Contains(containerPort))
        {
            throw new ArgumentException($"Port {containerPort} was not published: declare it with WithPort({containerPort}) (or -p).", nameof(containerPort));
        }

        return new ContainerEndpoint("127.0.0.1", _forwarders.TryGetValue(containerPort, out var forwarder) ? forwarder.HostPort : containerPort);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var forwarder in _forwarders.Values)
        {
            await forwarder.DisposeAsync().ConfigureAwait(false);
        }
    }
}
