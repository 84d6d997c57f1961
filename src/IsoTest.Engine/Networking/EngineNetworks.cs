using System.Globalization;
using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Networking;

/// <summary>
/// The user-defined networks of one engine and who is on them: creates networks, joins a container's
/// network namespace to its networks (a veth pair per network, the container end named <c>eth0</c>,
/// <c>eth1</c>, ...), keeps every member's <c>/etc/hosts</c> current, and takes it all down again.
/// One lock guards membership: a join costs a few netlink round trips (~0.1 ms each).
/// </summary>
internal sealed class EngineNetworks
{
    /// <summary>A /24 per network: 253 members.</summary>
    public const int DefaultPrefixLength = 24;

    /// <summary>
    /// Every member's veth MTU (the bridge takes its ports' smallest): near loopback's 65536, as no packet of a network
    /// crosses a real wire; an outbound network's tap has the same (slirp4netns's largest), so nothing is fragmented
    /// on the way out. With 1500, slirp4netns carried a stream at 18 MiB/s, with this 63 (bench network --quick, load 30).
    /// </summary>
    public const int Mtu = 65520;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, EngineNetwork> _networks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, NetworkMember> _members = [];
    private readonly string _stateDirectory;
    private readonly Lazy<NetworkHolder>? _holder;
    private readonly Func<string?> _findSlirp;
    private long _nextVeth;

    /// <param name="stateDirectory">Where members' hosts files live.</param>
    /// <param name="holder">Rootless: what makes the namespaces (the engine cannot); null as root, where the engine makes them itself.</param>
    /// <param name="findSlirp">Where slirp4netns is (outbound networks), or null when it is not installed; by default looked up on PATH.</param>
    public EngineNetworks(string stateDirectory, Lazy<NetworkHolder>? holder = null, Func<string?>? findSlirp = null)
    {
        _stateDirectory = stateDirectory;
        _holder = holder;
        _findSlirp = findSlirp ?? (() => OutboundLink.Find(Environment.GetEnvironmentVariable("PATH")));
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _networks.Count;
            }
        }
    }

    /// <summary>
    /// Makes the namespace, its bridge and the gateway address, and for an outbound network its way out
    /// (<see cref="OutboundLink"/>); nothing is left when a step fails.
    /// </summary>
    public EngineNetwork Create(NetworkSpec spec, int prefixLength = DefaultPrefixLength)
    {
        string? slirp = null;
        if (spec.Outbound)
        {
            slirp = _findSlirp() ?? throw new NetworkException(spec.Name, $"Network '{spec.Name}': outbound access on the built-in engine goes through {OutboundLink.Package}, which is not installed (not on PATH, nor in /usr/bin): install Debian's package (apt-get install {OutboundLink.Package}), or drop WithOutboundAccess().");
        }

        lock (_lock)
        {
            if (_networks.ContainsKey(spec.Name))
            {
                throw new NetworkException(spec.Name, $"A network named '{spec.Name}' already exists in this engine: choose another name (WithName) or omit it for a unique one.");
            }

            var taken = HostPrefixes().Concat(_networks.Values.Select(n => (n.Subnet.Gateway, n.Subnet.PrefixLength)));
            var subnet = Subnet.Choose(prefixLength, taken)
                ?? throw new NetworkException(spec.Name, $"Network '{spec.Name}': no free /{prefixLength} subnet is left in 10.200.0.0-10.255.255.255 (the host routes some, this engine's networks hold the rest): dispose networks you no longer need.");

            SafeFileHandle? netns = null;
            SafeFileHandle? userns = null;
            Netlink? netlink = null;
            Netlink? netfilter = null;
            OutboundLink? outbound = null;
            bool bridged = false;
            try
            {
                if (_holder is null)
                {
                    (netns, netlink) = NetworkNamespace.MakeOnOwnThread(Netlink.Open);
                    netfilter = slirp is null ? null : Netlink.InNamespace(netns, Netlink.OpenNetfilter);
                }
                else
                {
                    (netns, netlink, netfilter, userns) = _holder.Value.Bridge();
                }

                int bridge = netlink.CreateBridge("br0");
                netlink.AddAddress(bridge, subnet.Gateway, prefixLength);
                netlink.SetUp(bridge);
                bridged = true;
                if (slirp is not null)
                {
                    outbound = OutboundLink.Start(slirp, netns, userns, netlink, netfilter!, bridge, Path.Combine(_stateDirectory, $"network-{spec.Name}-slirp4netns.log"));
                }

                var network = new EngineNetwork(this, spec.Name, subnet, netns, netlink, bridge, Listener, outbound);
                _networks[spec.Name] = network;
                return network;
            }
            catch (NativeException e)
            {
                outbound?.Dispose();
                netlink?.Dispose();
                netns?.Dispose();
                throw new NetworkException(spec.Name, (bridged, _holder) switch
                {
                    (true, _) => $"Network '{spec.Name}': outbound access could not be set up: {e.Message}. Check that {slirp} runs here (it needs /dev/net/tun), or drop WithOutboundAccess().",
                    (false, null) => $"Network '{spec.Name}' could not be created: {e.Message}.",
                    _ => $"Network '{spec.Name}' could not be created: {e.Message}. Rootless networks need unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0); else run as root or use the Docker backend (ISOTEST_BACKEND=docker).",
                }, e);
            }
            finally
            {
                // slirp4netns holds its own copies once started; the bridge keeps only the rtnetlink socket.
                netfilter?.Dispose();
                userns?.Dispose();
            }
        }
    }

    /// <summary>
    /// Puts a container's network namespace on its networks and writes its hosts files. Checks everything
    /// first (live networks of this engine, free addresses, unique names); a failure part-way removes the
    /// veths made so far, so nothing is half-made.
    /// </summary>
    public NetworkMember Join(string containerId, IReadOnlyList<string> names, IReadOnlyList<string> aliases, IReadOnlyList<Network> networks, SafeFileHandle containerNetns, Netlink containerNetlink)
    {
        lock (_lock)
        {
            var mine = new List<EngineNetwork>();
            foreach (var requested in networks)
            {
                // Joined by object (NetworkBuilder) or by name (WithNetwork("n"), the CLI's --network n).
                var name = requested.Name!;
                var network = requested.Source as EngineNetwork ?? _networks.GetValueOrDefault(name);
                if (network is null || !ReferenceEquals(_networks.GetValueOrDefault(name), network))
                {
                    throw network is { Disposed: true }
                        ? Disposed(name)
                        : requested.Source is not null
                            ? new NetworkException(name, $"Network '{name}' belongs to another backend or engine: create it with NetworkBuilder().WithBackend(...) of the backend that runs this container.")
                            : new NetworkException(name, $"There is no network '{name}' in this engine: create it first (new NetworkBuilder().WithName(\"{name}\").BuildAsync()).");
                }

                CheckNames(network, containerId, aliases, names);
                mine.Add(network);
            }

            var member = new NetworkMember(
                containerId,
                [.. names, .. aliases],
                Path.Combine(_stateDirectory, $"{containerId}-hosts"),
                Path.Combine(_stateDirectory, $"{containerId}-resolv.conf"));
            try
            {
                for (int i = 0; i < mine.Count; i++)
                {
                    Attach(mine[i], member, $"eth{i.ToString(CultureInfo.InvariantCulture)}", containerNetns, containerNetlink);
                }

                // The way out is through the first outbound network's gateway; without one there is no default route at all.
                if (mine.FirstOrDefault(n => n.Outbound is not null) is { } way)
                {
                    try
                    {
                        containerNetlink.AddDefaultRoute(way.Subnet.Gateway);
                    }
                    catch (NativeException e)
                    {
                        throw new NetworkException(way.Name, $"Container {containerId} could not route out through network '{way.Name}': {e.Message}.", e);
                    }
                }

                File.WriteAllText(member.ResolvPath, HostsFile.ResolvConf);
                _members[containerId] = member;
                Rewrite(Neighbours(member).Append(member));
                return member;
            }
            catch
            {
                Detach(member);
                File.Delete(member.HostsPath);
                File.Delete(member.ResolvPath);
                throw;
            }
        }
    }

    /// <summary>Takes a container off its networks (its veths go) and updates the other members' hosts files.</summary>
    public void Leave(string containerId)
    {
        lock (_lock)
        {
            if (!_members.Remove(containerId, out var member))
            {
                return;
            }

            var neighbours = Neighbours(member).ToList();
            Detach(member);
            File.Delete(member.HostsPath);
            File.Delete(member.ResolvPath);
            Rewrite(neighbours);
        }
    }

    /// <summary>Disposes a network: its members lose their interface on it, then the namespace goes.</summary>
    public async ValueTask RemoveAsync(EngineNetwork network)
    {
        lock (_lock)
        {
            if (!_networks.Remove(network.Name))
            {
                return;
            }

            var affected = network.Members.Values.Select(a => a.Member).ToList();
            foreach (var attachment in network.Members.Values.ToList())
            {
                attachment.Member.Attachments.Remove(attachment);
                network.Netlink.DeleteLink(attachment.BridgeLinkIndex);
            }

            network.Members.Clear();
            network.Disposed = true;
            Rewrite(affected.Where(m => _members.ContainsKey(m.ContainerId)));
        }

        await network.CloseAsync().ConfigureAwait(false);
    }

    /// <summary>Disposes every network (the engine is being disposed).</summary>
    public async ValueTask DisposeAllAsync()
    {
        EngineNetwork[] all;
        lock (_lock)
        {
            all = [.. _networks.Values];
        }

        foreach (var network in all)
        {
            await RemoveAsync(network).ConfigureAwait(false);
        }
    }

    /// <summary>A listening TCP socket inside a network's namespace: made from a thread that joins it as root, by the holder rootless.</summary>
    private System.Net.Sockets.Socket Listener(SafeFileHandle netns, System.Net.IPAddress address, int port)
    {
        if (_holder is not null)
        {
            return _holder.Value.Listen(netns, address, port);
        }

        return Netlink.InNamespace(netns, () =>
        {
            var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            try
            {
                socket.Bind(new System.Net.IPEndPoint(address, port));
                socket.Listen(512);
                return socket;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        });
    }

    internal static NetworkException Disposed(string name) =>
        new(name, $"Network '{name}' was disposed: containers cannot join it. Create a new network with NetworkBuilder, and dispose a network only after its containers (declare it first with `await using`).");

    private static void CheckNames(EngineNetwork network, string containerId, IReadOnlyList<string> aliases, IReadOnlyList<string> names)
    {
        foreach (var other in network.Members.Values.Where(a => a.Member.ContainerId != containerId))
        {
            foreach (var alias in aliases.Concat(names.Take(1)))
            {
                if (other.Member.Names.Contains(alias, StringComparer.OrdinalIgnoreCase))
                {
                    throw new NetworkException(network.Name, $"Network '{network.Name}': the name '{alias}' is already used there by container {other.Member.ContainerId}: give this container another alias (WithNetworkAliases) or name.");
                }
            }
        }
    }

    private void Attach(EngineNetwork network, NetworkMember member, string interfaceName, SafeFileHandle containerNetns, Netlink containerNetlink)
    {
        int slot = network.TakeSlot();
        if (slot < 0)
        {
            throw new NetworkException(network.Name, $"Network '{network.Name}' has no free address: its subnet {network.Subnet} holds {network.Subnet.Capacity} containers and all are taken. Dispose containers you no longer need, or spread them over more networks.");
        }

        int bridgeEnd = 0;
        try
        {
            // veth names are per namespace; a counter keeps them unique in the network's for the engine's life.
            string vethName = "v" + Interlocked.Increment(ref _nextVeth).ToString("x", CultureInfo.InvariantCulture);
            bridgeEnd = network.Netlink.CreateVethPair(vethName, interfaceName, containerNetns, Mtu);
            network.Netlink.SetMasterAndUp(bridgeEnd, network.BridgeIndex);
            int inside = containerNetlink.IndexOf(interfaceName);
            containerNetlink.AddAddress(inside, network.Subnet.Member(slot), network.Subnet.PrefixLength);
            containerNetlink.SetUp(inside);
        }
        catch (NativeException e)
        {
            if (bridgeEnd > 0)
            {
                network.Netlink.DeleteLink(bridgeEnd);
            }

            network.FreeSlot(slot);
            throw new NetworkException(network.Name, $"Container {member.ContainerId} could not join network '{network.Name}': {e.Message}.", e);
        }

        var attachment = new Attachment(network, member, slot, bridgeEnd, interfaceName);
        member.Attachments.Add(attachment);
        network.Members[member.ContainerId] = attachment;
    }

    private static void Detach(NetworkMember member)
    {
        foreach (var attachment in member.Attachments)
        {
            attachment.Network.Members.Remove(member.ContainerId);
            attachment.Network.FreeSlot(attachment.Slot);

            // Deleting one end takes the other (in the container) with it; when the container's namespace is
            // already gone, so is the pair (ENODEV, fine).
            if (!attachment.Network.Disposed)
            {
                attachment.Network.Netlink.DeleteLink(attachment.BridgeLinkIndex);
            }
        }

        member.Attachments.Clear();
    }

    private IEnumerable<NetworkMember> Neighbours(NetworkMember member) =>
        member.Attachments.SelectMany(a => a.Network.Members.Values).Select(a => a.Member)
            .Where(m => m != member && _members.ContainsKey(m.ContainerId)).Distinct();

    private static void Rewrite(IEnumerable<NetworkMember> members)
    {
        foreach (var member in members)
        {
            HostsFile.WriteInPlace(member.HostsPath, HostsFile.Render(Entries(member)));
        }
    }

    /// <summary>Its own addresses first, then the host's relay, then every other member of each of its networks.</summary>
    private static IEnumerable<(string, IEnumerable<string>)> Entries(NetworkMember member)
    {
        foreach (var own in member.Attachments)
        {
            yield return (own.Address.ToString(), member.Names);
        }

        if (member.Attachments.Count > 0)
        {
            yield return (member.Attachments[0].Network.Subnet.Gateway.ToString(), [HostNames.IsoTest, HostNames.Docker]);
        }

        foreach (var own in member.Attachments)
        {
            foreach (var other in own.Network.Members.Values.Where(a => a.Member != member))
            {
                yield return (other.Address.ToString(), other.Member.Names);
            }
        }
    }

    /// <summary>The host's IPv4 routes and addresses, read from the engine's own namespace (the host's, as root).</summary>
    private static IEnumerable<(System.Net.IPAddress, int)> HostPrefixes()
    {
        using var host = Netlink.Open();
        return host.IPv4Prefixes();
    }
}
