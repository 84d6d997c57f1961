using System.Net;
using System.Net.Sockets;
using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Networking;

/// <summary>
/// A user-defined network of the built-in engine: a bridge (<c>br0</c>) inside a network namespace of
/// its own, held only by a descriptor of this process, so the kernel removes it (bridge, veths, addresses)
/// when the engine dies, even by kill -9. No host interface, route or firewall rule is touched: the
/// gateway address lives in that namespace, and the host is reached only through relays of the ports a
/// test exposes (<see cref="ExposeHostPortsAsync"/>), and beyond it only by an outbound network, through
/// its <see cref="OutboundLink"/>. Membership is kept by <see cref="EngineNetworks"/>.
/// </summary>
internal sealed class EngineNetwork : INetwork
{
    private readonly EngineNetworks _owner;
    private readonly bool[] _taken;
    private readonly string?[] _leftover;
    private int _next;
    private readonly Dictionary<int, PortForwarder> _hostPorts = [];
    private readonly Func<SafeFileHandle, IPAddress, int, Socket> _listen;

    internal EngineNetwork(EngineNetworks owner, string name, Subnet subnet, SafeFileHandle netns, Netlink netlink, int bridgeIndex, Func<SafeFileHandle, IPAddress, int, Socket> listen, OutboundLink? outbound = null)
    {
        Outbound = outbound;
        _listen = listen;
        _owner = owner;
        Name = name;
        Subnet = subnet;
        Namespace = netns;
        Netlink = netlink;
        BridgeIndex = bridgeIndex;
        _taken = new bool[subnet.Capacity];
        _leftover = new string?[subnet.Capacity];
    }

    public string Name { get; }

    public Subnet Subnet { get; }

    internal SafeFileHandle Namespace { get; }

    internal Netlink Netlink { get; }

    internal int BridgeIndex { get; }

    /// <summary>The way out of an outbound network (<see cref="NetworkBuilder.WithOutboundAccess"/>); null for one that has none.</summary>
    internal OutboundLink? Outbound { get; }

    /// <summary>Container id → its place on this network. Guarded by the owner's lock.</summary>
    internal Dictionary<string, Attachment> Members { get; } = [];

    internal bool Disposed { get; set; }

    /// <summary>Namespaces already on this network (<see cref="ReadyMember"/>), made by the engine's pool. Guarded by the owner's lock.</summary>
    internal Queue<ReadyMember> Ready { get; } = new();

    /// <summary>The ready namespaces now (for tests: their veths are no member's).</summary>
    internal IReadOnlyList<ReadyMember> ReadyNow => _owner.ReadyNow(this);

    /// <summary>Ready members the pool is making now (each holds a slot). Guarded by the owner's lock.</summary>
    internal int Plugging { get; set; }

    /// <summary>Addresses neither a member nor a ready namespace holds. Called under the owner's lock.</summary>
    internal int FreeSlots => _taken.Count(t => !t);

    /// <summary>
    /// A free member address, or -1; with the bridge end of the veth that last had it when that may still exist
    /// (<paramref name="leftover"/>, to delete before the address is used again). Next-fit, so an address freed
    /// is the last to be handed out again: a member that left is long gone from its neighbours' ARP caches, and
    /// its veth, which goes with its namespace, from the bridge. Called under the owner's lock.
    /// </summary>
    internal int TakeSlot(out string? leftover)
    {
        for (int i = 0; i < _taken.Length; i++)
        {
            int slot = (_next + i) % _taken.Length;
            if (!_taken[slot])
            {
                _taken[slot] = true;
                _next = slot + 1;
                leftover = _leftover[slot];
                _leftover[slot] = null;
                return slot;
            }
        }

        leftover = null;
        return -1;
    }

    /// <summary>Frees an address; <paramref name="leftover"/> names the bridge end of a veth that may outlive its holder for a while.</summary>
    internal void FreeSlot(int slot, string? leftover = null)
    {
        _taken[slot] = false;
        _leftover[slot] = leftover;
    }

    public Task ExposeHostPortsAsync(int port, CancellationToken cancellationToken = default)
    {
        if (port is < 1 or > 65535)
        {
            throw new NetworkException(Name, $"ExposeHostPortsAsync({port}) on network '{Name}': a TCP port is between 1 and 65535.");
        }

        lock (_hostPorts)
        {
            if (Disposed)
            {
                throw new NetworkException(Name, $"Network '{Name}' was disposed: expose host ports on a live network (create a new one with NetworkBuilder).");
            }

            if (_hostPorts.ContainsKey(port))
            {
                return Task.CompletedTask;
            }

            // The listener is made inside the network's namespace, on the gateway: members reach it as
            // host.isotest.internal:port; each connection is relayed from this process to the host's loopback.
            Socket listener;
            try
            {
                listener = _listen(Namespace, Subnet.Gateway, port);
            }
            catch (Exception e) when (e is NativeException or SocketException)
            {
                throw new NetworkException(Name, $"ExposeHostPortsAsync({port}) on network '{Name}': the relay could not listen on {Subnet.Gateway}:{port} there: {e.Message}.", e);
            }

            var relay = new PortForwarder(port, listener, ConnectHostAsync(port));
            relay.Start();
            _hostPorts[port] = relay;
        }

        return Task.CompletedTask;
    }

    private static Func<CancellationToken, Task<Socket?>> ConnectHostAsync(int port) => async ct =>
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(IPAddress.Loopback, port, ct).ConfigureAwait(false);
            return socket;
        }
        catch (SocketException)
        {
            socket.Dispose();
            return null; // nothing listens on the host: the member sees its connection closed
        }
    };

    public ValueTask DisposeAsync() => _owner.RemoveAsync(this);

    /// <summary>Stops the relays and closes the namespace (the kernel then deletes the bridge and every veth end in it).</summary>
    internal async ValueTask CloseAsync()
    {
        PortForwarder[] relays;
        lock (_hostPorts)
        {
            Disposed = true;
            relays = [.. _hostPorts.Values];
            _hostPorts.Clear();
        }

        foreach (var relay in relays)
        {
            await relay.DisposeAsync().ConfigureAwait(false);
        }

        Outbound?.Dispose();
        Netlink.Dispose();
        // Ready namespaces were taken out of Ready under the owner's lock when the network was removed.
        Namespace.Dispose();
    }
}

/// <summary>A container's place on one network: its address and the bridge end of its veth (index and name).</summary>
internal sealed record Attachment(EngineNetwork Network, NetworkMember Member, int Slot, int BridgeLinkIndex, string BridgeLinkName, string Interface)
{
    public IPAddress Address => Network.Subnet.Member(Slot);
}

/// <summary>A container on one or more networks: the names it answers to and its hosts files.</summary>
internal sealed class NetworkMember(string containerId, IReadOnlyList<string> names, string hostsPath, string resolvPath)
{
    public string ContainerId { get; } = containerId;

    /// <summary>Container name, hostname, then aliases: what the other members resolve to its address.</summary>
    public IReadOnlyList<string> Names { get; } = names;

    public string HostsPath { get; } = hostsPath;

    public string ResolvPath { get; } = resolvPath;

    public List<Attachment> Attachments { get; } = [];
}

/// <summary>
/// A network namespace made ahead of time on one network (root): lo up, <c>eth0</c> up with the address of
/// <see cref="Slot"/>, its veth's other end up on the bridge; and a netlink socket acting inside. Serves exactly one
/// container, which claims it at start (<see cref="EngineNetworks.TakeReady"/>); never reused.
/// </summary>
internal sealed class ReadyMember(EngineNetwork network, SafeFileHandle netns, Netlink inside, int slot, int bridgeLinkIndex, string bridgeLinkName) : IDisposable
{
    public EngineNetwork Network { get; } = network;

    public SafeFileHandle Namespace { get; } = netns;

    public Netlink Inside { get; } = inside;

    public int Slot { get; } = slot;

    public int BridgeLinkIndex { get; } = bridgeLinkIndex;

    public string BridgeLinkName { get; } = bridgeLinkName;

    /// <summary>Closes both: the kernel then deletes the namespace with its veth pair (the bridge end too).</summary>
    public void Dispose()
    {
        Inside.Dispose();
        Namespace.Dispose();
    }
}
