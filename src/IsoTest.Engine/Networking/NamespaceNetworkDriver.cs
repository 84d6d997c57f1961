using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Networking;

/// <summary>
/// The engine's network driver: a private network namespace per container (as root, a ready one from the
/// <see cref="NetnsPool"/>; rootless, the agent makes one inside the container's user namespace), or the host's;
/// as root, a container on user-defined networks (<see cref="EngineNetworks"/>) gets a namespace the engine
/// has joined to them before the agent starts.
/// </summary>
internal sealed class NamespaceNetworkDriver : INetworkDriver
{
    private readonly Lazy<NetnsPool>? _pool;
    private readonly EngineNetworks _networks;
    private readonly bool _root;

    /// <param name="root">Root: keep namespaces ready, and networks work. Rootless cannot pool: the namespace must belong to a user namespace that does not exist yet.</param>
    /// <param name="stateDirectory">Where members' hosts files live.</param>
    public NamespaceNetworkDriver(bool root, string stateDirectory)
    {
        _root = root;
        _pool = root ? new Lazy<NetnsPool>(() => new NetnsPool()) : null;
        _networks = new EngineNetworks(stateDirectory);
    }

    /// <summary>The pool, started on first use; null when rootless.</summary>
    internal NetnsPool? Pool => _pool?.Value;

    internal EngineNetworks Networks => _networks;

    public int NetworkCount => _networks.Count;

    public string? Check(ContainerSpec spec) => spec.Networks.Count > 0 && !_root
        ? $"WithNetwork(\"{spec.Networks[0].Name}\"): the built-in engine joins containers to networks only as root today: run the tests as root, or use the Docker backend (ISOTEST_BACKEND=docker)."
        : null;

    public IDisposable? BeginCreate(ContainerSpec spec) => spec.Network.Kind != NetworkKind.Host ? Pool?.Hold() : null;

    public NetworkAttachment Attach(ContainerSpec spec, string containerId, IReadOnlyList<string> names)
    {
        if (spec.Network.Kind == NetworkKind.Host)
        {
            return new NetworkAttachment(NetnsMode.Host);
        }

        var ready = Pool?.TryTake();
        if (spec.Networks.Count == 0)
        {
            return ready is not null ? new NetworkAttachment(NetnsMode.Join, ready) : new NetworkAttachment(NetnsMode.New);
        }

        // The members' interfaces are made before the agent starts, so the payload finds them up from its first instruction.
        SafeFileHandle netns;
        Netlink inside;
        if (ready is null)
        {
            (netns, inside) = NetworkNamespace.MakeOnOwnThread(Netlink.Open);
        }
        else
        {
            netns = ready;
            inside = Netlink.OpenIn(netns);
        }

        using (inside)
        {
            try
            {
                var member = _networks.Join(containerId, names, spec.NetworkAliases, spec.Networks, netns, inside);
                return new NetworkAttachment(NetnsMode.Join, netns,
                [
                    new MountSpec(MountKind.Bind, member.HostsPath, "/etc/hosts", ReadOnly: true),
                    new MountSpec(MountKind.Bind, member.ResolvPath, "/etc/resolv.conf", ReadOnly: true),
                ]);
            }
            catch
            {
                netns.Dispose();
                throw;
            }
        }
    }

    public void Detach(string containerId) => _networks.Leave(containerId);

    public INetwork CreateNetwork(NetworkSpec spec, int prefixLength) => _root
        ? _networks.Create(spec, prefixLength)
        : throw new NetworkException(spec.Name, $"Network '{spec.Name}': the built-in engine creates networks only as root today: run the tests as root, or use the Docker backend (ISOTEST_BACKEND=docker).");

    public ValueTask RemoveNetworksAsync() => _networks.DisposeAllAsync();

    public void Dispose()
    {
        if (_pool is { IsValueCreated: true })
        {
            _pool.Value.Dispose();
        }
    }
}
