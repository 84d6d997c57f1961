namespace IsoTest;

/// <summary>
/// A user-defined network (Testcontainers' <c>INetwork</c>): containers that join it with
/// <see cref="ContainerBuilder.WithNetwork(INetwork)"/> reach each other by container name and by
/// alias (<see cref="ContainerBuilder.WithNetworkAliases"/>) on any port, without publishing; nothing
/// else reaches them, and they reach nothing of the host but the ports exposed with
/// <see cref="ExposeHostPortsAsync"/>. Disposing it removes it (its members should be gone first).
/// </summary>
public interface INetwork : IAsyncDisposable
{
    /// <summary>The network's name, unique among the live networks of its backend.</summary>
    string Name { get; }

    /// <summary>
    /// Makes the host's TCP port <paramref name="port"/> (a server listening on the host's loopback) reachable
    /// from this network's members as <c>host.isotest.internal:port</c> (also <c>host.docker.internal</c>).
    /// No other port of the host is reachable. Exposing a port twice does nothing more.
    /// </summary>
    /// <exception cref="NetworkException">The port is out of range, or the network is disposed.</exception>
    Task ExposeHostPortsAsync(int port, CancellationToken cancellationToken = default);
}

/// <summary>A network could not be created, joined or changed; the message names the network and the fix.</summary>
public sealed class NetworkException : IsoTestException
{
    /// <summary>A network could not be created, joined or removed; the message says why and what to do.</summary>
    public NetworkException(string network, string message, Exception? inner = null)
        : base(message, inner)
    {
        Network = network;
    }

    /// <summary>The network concerned.</summary>
    public string Network { get; }
}

/// <summary>What a backend is asked to create (validated by <see cref="NetworkBuilder"/>).</summary>
/// <param name="Name">The unique name.</param>
/// <param name="Outbound">True when members may reach beyond the host (NAT); off by default.</param>
public sealed record NetworkSpec(string Name, bool Outbound);

/// <summary>A backend that can create user-defined networks.</summary>
public interface INetworkBackend
{
    /// <summary>Creates the network.</summary>
    /// <exception cref="NetworkException">It could not be created; nothing is left behind.</exception>
    Task<INetwork> CreateNetworkAsync(NetworkSpec spec, CancellationToken cancellationToken);
}

/// <summary>The names every backend gives the host inside a network.</summary>
public static class HostNames
{
    /// <summary>IsoTest's name for the host, on every backend.</summary>
    public const string IsoTest = "host.isotest.internal";

    /// <summary>Docker's name for the host, given too so that images written for Docker find it.</summary>
    public const string Docker = "host.docker.internal";
}
