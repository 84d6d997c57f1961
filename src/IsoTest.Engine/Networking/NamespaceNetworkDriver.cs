using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Networking;

/// <summary>
/// The engine's network driver: a private network namespace per container (as root, a ready one from the
/// <see cref="NetnsPool"/>; rootless, the agent makes one inside the container's user namespace, unless that is the
/// engine's shared one and <see cref="UserNetnsPools"/> has one ready there), or the host's;
/// as root, a container on user-defined networks (<see cref="EngineNetworks"/>) gets a namespace the engine
/// has joined to them before the agent starts: one the pool made ready on its first network, when there is one. Rootless, the <see cref="NetworkHolder"/> makes those namespaces
/// (a member's inside a user namespace of its own, which the agent joins first) and the engine configures them the same way.
/// </summary>
internal sealed class NamespaceNetworkDriver : INetworkDriver
{
    private readonly Lazy<NetnsPool>? _pool;
    private readonly EngineNetworks _networks;
    private readonly Lazy<NetworkHolder>? _holder;

    /// <param name="root">Root: keep namespaces ready. Rootless pools only for containers in a shared user namespace (<see cref="UserNetnsPools"/>, outside this driver: the namespace must belong to the container's user namespace).</param>
    /// <param name="stateDirectory">Where members' hosts files live.</param>
    /// <param name="holder">Rootless: starts the network holder (on first use of a network).</param>
    /// <param name="findSlirp">Where slirp4netns is (outbound networks), or null when it is not installed; by default looked up on PATH.</param>
    public NamespaceNetworkDriver(bool root, string stateDirectory, Func<NetworkHolder>? holder = null, Func<string?>? findSlirp = null)
    {
        _holder = root || holder is null ? null : new Lazy<NetworkHolder>(holder);
        _networks = new EngineNetworks(stateDirectory, _holder, findSlirp, keepReady: root);
        _pool = root ? new Lazy<NetnsPool>(() => new NetnsPool(_networks.PlugOne)) : null;
        if (_pool is not null)
        {
            _networks.WantReady = () => _pool.Value.Wake();
        }
    }

    /// <summary>The pool, started on first use; null when rootless.</summary>
    internal NetnsPool? Pool => _pool?.Value;

    internal EngineNetworks Networks => _networks;

    public int NetworkCount => _networks.Count;

    public string? Check(ContainerSpec spec) => null;

    public IDisposable? BeginCreate(ContainerSpec spec) => spec.Network.Kind != NetworkKind.Host ? Pool?.Hold() : null;

    public NetworkAttachment Attach(ContainerSpec spec, string containerId, IReadOnlyList<string> names, RootFs.IdMaps? memberMaps)
    {
        if (spec.Network.Kind == NetworkKind.Host)
        {
            return new NetworkAttachment(NetnsMode.Host);
        }

        // Root on networks: a namespace on the first one already (the pool made it); the rest are joined live.
        if (spec.Networks.Count > 0 && _pool is not null && _networks.TakeReady(spec.Networks[0]) is { } plugged)
        {
            return Join(spec, containerId, names, plugged.Namespace, plugged.Inside, null, plugged);
        }

        var ready = Pool?.TryTake();
        if (spec.Networks.Count == 0)
        {
            return ready is not null ? new NetworkAttachment(NetnsMode.Join, ready) : new NetworkAttachment(NetnsMode.New);
        }

        // The members' interfaces are made before the agent starts, so the payload finds them up from its first instruction.
        SafeFileHandle netns;
        SafeFileHandle? userns = null;
        Netlink inside;
        if (_holder is not null)
        {
            try
            {
                (netns, inside, userns) = _holder.Value.Member(memberMaps ?? throw new ArgumentNullException(nameof(memberMaps), "rootless members need their maps"));
            }
            catch (NativeException e)
            {
                throw new NetworkException(spec.Networks[0].Name!, $"Container {containerId}: its network namespace could not be made: {e.Message}. Rootless networks need unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0).", e);
            }
        }
        else if (ready is null)
        {
            (netns, inside) = NetworkNamespace.MakeOnOwnThread(Netlink.Open);
        }
        else
        {
            netns = ready;
            inside = Netlink.OpenIn(netns);
        }

        return Join(spec, containerId, names, netns, inside, userns, null);
    }

    /// <summary>Joins the container's namespace to its networks; owns the namespaces until it returns them in the attachment, and the netlink socket.</summary>
    private NetworkAttachment Join(ContainerSpec spec, string containerId, IReadOnlyList<string> names, SafeFileHandle netns, Netlink inside, SafeFileHandle? userns, ReadyMember? plugged)
    {
        using (inside)
        {
            try
            {
                var member = _networks.Join(containerId, names, spec.NetworkAliases, spec.Networks, netns, inside, plugged);
                return new NetworkAttachment(userns is null ? NetnsMode.Join : NetnsMode.JoinWithUser, netns,
                [
                    new MountSpec(MountKind.Bind, member.HostsPath, "/etc/hosts", ReadOnly: true),
                    new MountSpec(MountKind.Bind, member.ResolvPath, "/etc/resolv.conf", ReadOnly: true),
                ], userns);
            }
            catch
            {
                netns.Dispose();
                userns?.Dispose();
                throw;
            }
        }
    }

    public void Detach(string containerId) => _networks.Leave(containerId);

    public INetwork CreateNetwork(NetworkSpec spec, int prefixLength) => _networks.Create(spec, prefixLength);

    public ValueTask RemoveNetworksAsync() => _networks.DisposeAllAsync();

    public void Dispose()
    {
        if (_pool is { IsValueCreated: true })
        {
            _pool.Value.Dispose();
        }

        if (_holder is { IsValueCreated: true })
        {
            _holder.Value.Dispose();
        }
    }
}
