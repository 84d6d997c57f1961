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

    /// <summary>Binds every forwarder now (at create), so a taken fixed port fails before anything else is made.</summary>
    /// <exception cref="ContainerStartException">A fixed host port is taken or privileged; nothing stays bound.</exception>
    public PublishedPorts(ContainerSpec spec, bool forward, Func<int, CancellationToken, Task<Socket?>> connectInside)
    {
        _ports = spec.Ports;
        if (!forward)
        {
            return;
        }

        foreach (var port in spec.Ports.Distinct())
        {
            var hostPort = spec.HostPorts.GetValueOrDefault(port);
            try
            {
                _forwarders[port] = new PortForwarder(port, hostPort, ct => connectInside(port, ct));
            }
            catch (SocketException e)
            {
                foreach (var bound in _forwarders.Values)
                {
                    bound.DisposeAsync().AsTask().GetAwaiter().GetResult();   // not accepting yet: closing the listener is all there is
                }

                throw new ContainerStartException(null, BindFailure(hostPort, port, e), inner: e);
            }
        }
    }

    private static string BindFailure(int hostPort, int containerPort, SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse =>
            $"Host port {hostPort} (for container port {containerPort}) is already in use on 127.0.0.1: stop what listens there (ss -ltnp 'sport = :{hostPort}' names it), bind another host port, or let the engine choose a free one with WithPort({containerPort}) / -p {containerPort}.",
        SocketError.AccessDenied =>
            $"Host port {hostPort} (for container port {containerPort}) is privileged (below net.ipv4.ip_unprivileged_port_start) and this engine runs without root: bind a host port of 1024 or more, or let the engine choose one with WithPort({containerPort}).",
        _ => $"Cannot listen on 127.0.0.1:{(hostPort == 0 ? "<ephemeral>" : hostPort)} for container port {containerPort}: {e.Message}.",
    };

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
