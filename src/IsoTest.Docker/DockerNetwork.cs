using System.Net;
using System.Net.Sockets;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace IsoTest.Docker;

/// <summary>
/// A user-defined network on Docker: a bridge network (internal unless outbound access was asked for),
/// labelled with its owner like the containers, so the sweep removes it when the owner died. Members
/// resolve each other through Docker's embedded DNS (container names and aliases). Host ports are
/// exposed by a relay this process runs on the network's gateway address, forwarding to the host's loopback.
/// </summary>
internal sealed class DockerNetwork : INetwork
{
    private readonly IDockerClient _client;
    private readonly Dictionary<int, HostRelay> _relays = [];
    private int _disposed;

    private DockerNetwork(IDockerClient client, string id, string name, IPAddress gateway)
    {
        _client = client;
        Id = id;
        Name = name;
        Gateway = gateway;
    }

    public string Id { get; }

    public string Name { get; }

    /// <summary>The host's address on the network's bridge: host.isotest.internal inside.</summary>
    public IPAddress Gateway { get; }

    internal bool Disposed => _disposed != 0;

    public static async Task<DockerNetwork> CreateAsync(IDockerClient client, NetworkSpec spec, CancellationToken cancellationToken)
    {
        var labels = new Dictionary<string, string>();
        DockerOwner.Current.AddLabels(labels);
        // Daemons before API 1.44 accept a second network of the same name; names must stay unique.
        var same = await client.Networks.ListNetworksAsync(
            new NetworksListParameters { Filters = new Dictionary<string, IDictionary<string, bool>> { ["name"] = new Dictionary<string, bool> { [spec.Name] = true } } },
            cancellationToken).ConfigureAwait(false);
        if (same.Any(n => n.Name == spec.Name))
        {
            throw new NetworkException(spec.Name, $"A network named '{spec.Name}' already exists: choose another name (WithName) or omit it for a unique one.");
        }

        NetworksCreateResponse created;
        try
        {
            created = await client.Networks.CreateNetworkAsync(
                new NetworksCreateParameters { Name = spec.Name, Driver = "bridge", Internal = !spec.Outbound, Labels = labels },
                cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException e)
        {
            var hint = e.StatusCode == HttpStatusCode.Conflict
                ? $"A network named '{spec.Name}' already exists: choose another name (WithName) or omit it for a unique one."
                : $"Docker could not create network '{spec.Name}': {DockerErrors.Message(e)}.";
            throw new NetworkException(spec.Name, hint, e);
        }

        try
        {
            var inspected = await client.Networks.InspectNetworkAsync(created.ID, cancellationToken).ConfigureAwait(false);
            var gateway = inspected.IPAM?.Config?.Select(c => c.Gateway).FirstOrDefault(g => IPAddress.TryParse(g, out var a) && a.AddressFamily == AddressFamily.InterNetwork)
                ?? throw new NetworkException(spec.Name, $"Docker gave network '{spec.Name}' no IPv4 gateway: check the daemon's default-address-pools.");
            return new DockerNetwork(client, created.ID, spec.Name, IPAddress.Parse(gateway));
        }
        catch
        {
            await client.Networks.DeleteNetworkAsync(created.ID, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The pseudo-container IsoTest's own API server (<c>isotest serve</c>) takes in <c>POST /networks/{id}/connect</c> as
    /// "expose this host port to the network": there the gateway lives in the engine's network namespace, not on
    /// this host, so the server relays it. No real container can have the name ('/' is not allowed in one).
    /// </summary>
    internal static string HostPortPseudoContainer(int port) => $"isotest.host-port/{port}";

    public async Task ExposeHostPortsAsync(int port, CancellationToken cancellationToken = default)
    {
        if (port is < 1 or > 65535)
        {
            throw new NetworkException(Name, $"ExposeHostPortsAsync({port}) on network '{Name}': a TCP port is between 1 and 65535.");
        }

        SocketException? notHere;
        lock (_relays)
        {
            if (Disposed)
            {
                throw new NetworkException(Name, $"Network '{Name}' was disposed: expose host ports on a live network (create a new one with NetworkBuilder).");
            }

            if (_relays.ContainsKey(port))
            {
                return;
            }

            try
            {
                _relays[port] = new HostRelay(new IPEndPoint(Gateway, port), port);
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
            {
                notHere = e;   // the gateway is not on this host: perhaps the daemon is IsoTest's server, below
            }
            catch (SocketException e)
            {
                throw NotExposed(port, e);
            }
        }

        try
        {
            await _client.Networks.ConnectNetworkAsync(Id, new NetworkConnectParameters { Container = HostPortPseudoContainer(port) }, cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException)
        {
            throw NotExposed(port, notHere);   // dockerd: no such container
        }
    }

    private NetworkException NotExposed(int port, SocketException e) =>
        new(Name, $"ExposeHostPortsAsync({port}) on network '{Name}': cannot listen on the network's gateway {Gateway}:{port} ({e.Message}); the Docker daemon must run on this machine for host ports to be exposed.", e);

    /// <summary>Disconnects what is still attached (a network with endpoints cannot be removed), then removes it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        HostRelay[] relays;
        lock (_relays)
        {
            relays = [.. _relays.Values];
            _relays.Clear();
        }

        foreach (var relay in relays)
        {
            relay.Dispose();
        }

        try
        {
            var inspected = await _client.Networks.InspectNetworkAsync(Id, CancellationToken.None).ConfigureAwait(false);
            foreach (var container in inspected.Containers?.Keys ?? Enumerable.Empty<string>())
            {
                await _client.Networks.DisconnectNetworkAsync(Id, new NetworkDisconnectParameters { Container = container, Force = true }, CancellationToken.None).ConfigureAwait(false);
            }

            await _client.Networks.DeleteNetworkAsync(Id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (DockerNetworkNotFoundException)
        {
            // already gone (swept, or removed by hand)
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>Force-removes networks labelled by an IsoTest process on this host that no longer runs.</summary>
    internal static async Task SweepAsync(IDockerClient client, CancellationToken cancellationToken)
    {
        var me = DockerOwner.Current;
        var networks = await client.Networks.ListNetworksAsync(
            new NetworksListParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>>
                {
                    ["label"] = new Dictionary<string, bool> { [$"{DockerOwner.MarkerLabel}=1"] = true, [$"{DockerOwner.HostLabel}={me.Host}"] = true },
                },
            },
            cancellationToken).ConfigureAwait(false);
        foreach (var network in networks)
        {
            var owner = DockerOwner.FromLabels(network.Labels);
            if (owner is null || owner.Host != me.Host || owner == me || !owner.IsGone())
            {
                continue;
            }

            try
            {
                await client.Networks.DeleteNetworkAsync(network.ID, cancellationToken).ConfigureAwait(false);
            }
            catch (DockerApiException)
            {
                // still in use by a container the same sweep is removing, or gone: the next sweep retries
            }
        }
    }

    /// <summary>Accepts on the gateway and relays each connection to 127.0.0.1 of the same port.</summary>
    private sealed class HostRelay : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly CancellationTokenSource _stop = new();

        public HostRelay(IPEndPoint listen, int hostPort)
        {
            try
            {
                _listener.Bind(listen);
                _listener.Listen(512);
            }
            catch
            {
                _listener.Dispose();
                throw;
            }

            _ = AcceptLoop.RunAsync(_listener, client => RelayAsync(client, hostPort), _stop.Token);
        }

        private async Task RelayAsync(Socket client, int hostPort)
        {
            using (client)
            using (var host = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                try
                {
                    await host.ConnectAsync(IPAddress.Loopback, hostPort, _stop.Token).ConfigureAwait(false);
                    using var a = new NetworkStream(client, ownsSocket: false);
                    using var b = new NetworkStream(host, ownsSocket: false);
                    await Task.WhenAll(CopyAsync(a, b, host), CopyAsync(b, a, client)).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
                {
                    // nothing listens on the host, or one side went away: the member sees its connection closed
                }
            }
        }

        private async Task CopyAsync(Stream from, Stream to, Socket toSocket)
        {
            await from.CopyToAsync(to, _stop.Token).ConfigureAwait(false);
            toSocket.Shutdown(SocketShutdown.Send);
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Dispose();
        }
    }
}
