using System.Collections.Concurrent;
using System.Security.Cryptography;
using IsoTest.Server.Http;

namespace IsoTest.Server.Networks;

/// <summary>A user-defined network the server made (docker network create), backed by the backend's own.</summary>
internal sealed record ServerNetwork(string Id, string Name, INetwork Inner, DateTimeOffset Created, IReadOnlyDictionary<string, string> Labels, bool Outbound)
{
    /// <summary>The network's IPv4 subnet and gateway (CIDR, address) as the engine gave them; null on a backend that does not say.</summary>
    public (string Subnet, string Gateway)? Addresses => Inner is IsoTest.Engine.Networking.EngineNetwork engine
        ? (engine.Subnet.ToString(), engine.Subnet.Gateway.ToString())
        : null;
}

/// <summary>
/// The server's networks: dockerd's three predefined ones (<c>bridge</c>, <c>host</c>, <c>none</c>: the
/// engine's private default, the host's, and the private default again, which has only loopback) and the
/// user-defined ones, each a real network of the backend (<see cref="NetworkBuilder"/>), where members reach
/// each other by container name and alias. Found by name, id or id prefix, as dockerd finds them.
/// </summary>
internal sealed class NetworkTable(IContainerBackend backend, TimeProvider clock) : IAsyncDisposable
{
    /// <summary>dockerd's predefined networks; they cannot be created or removed.</summary>
    public static readonly IReadOnlyList<string> Predefined = ["bridge", "host", "none"];

    private readonly ConcurrentDictionary<string, ServerNetwork> _byId = new();
    private readonly ConcurrentDictionary<string, string> _names = new();   // name -> id ("" while being created)

    public IEnumerable<ServerNetwork> All => _byId.Values.OrderBy(n => n.Created);

    public static string PredefinedId(string name) => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("isotest-network-" + name)));

    /// <summary>Makes a user-defined network; with <paramref name="outbound"/> its members reach beyond the host.</summary>
    public async Task<ServerNetwork> CreateAsync(string? name, IReadOnlyDictionary<string, string> labels, bool outbound, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw DockerApiException.BadRequest("network name is required: docker network create NAME");
        }

        if (Predefined.Contains(name))
        {
            throw DockerApiException.Conflict($"network with name {name} already exists (it is predefined)");
        }

        if (!_names.TryAdd(name, ""))
        {
            throw DockerApiException.Conflict($"network with name {name} already exists");
        }

        try
        {
            INetwork inner;
            try
            {
                inner = await new NetworkBuilder().WithName(name).WithOutboundAccess(outbound).WithBackend(backend).BuildAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (NetworkException e)
            {
                throw DockerApiException.BadRequest(e.Message);
            }

            var network = new ServerNetwork(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), name, inner, clock.GetUtcNow(), labels, outbound);
            _byId[network.Id] = network;
            _names[name] = network.Id;
            return network;
        }
        catch
        {
            _names.TryRemove(name, out _);
            throw;
        }
    }

    /// <summary>A user-defined network by name, full id or unique id prefix; null when there is none (or it is predefined).</summary>
    public ServerNetwork? TryFind(string idOrName)
    {
        if (_byId.TryGetValue(idOrName, out var byId))
        {
            return byId;
        }

        if (_names.TryGetValue(idOrName, out var id) && id.Length > 0 && _byId.TryGetValue(id, out var byName))
        {
            return byName;
        }

        var matches = _byId.Values.Where(n => n.Id.StartsWith(idOrName, StringComparison.Ordinal)).Take(2).ToList();
        return matches.Count == 1 ? matches[0] : null;
    }

    /// <summary>Removes a network; the caller has checked that no container uses it.</summary>
    public async Task RemoveAsync(ServerNetwork network)
    {
        if (_byId.TryRemove(network.Id, out _))
        {
            _names.TryRemove(network.Name, out _);
            await network.Inner.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var network in _byId.Values.ToList())
        {
            await RemoveAsync(network).ConfigureAwait(false);
        }
    }
}
