using System.Globalization;
using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Networking;

/// <summary>
/// The user-defined networks of one engine and who is on them: creates networks, joins a container's
/// network namespace to its networks (a veth pair per network, the container end named <c>eth0</c>,
/// <c>eth1</c>, ...), keeps every member's <c>/etc/hosts</c> current, and takes it all down again.
/// One lock guards membership. As root a container's first network costs its start no kernel call: the pool keeps
/// namespaces ready on each network (<see cref="PlugOne"/>), and a member's veths go with its namespace after it is
/// gone instead of being deleted on its removal (<see cref="Leave"/>). A join made live costs a few netlink round trips
/// (~0.1 ms each; making the veth ~0.6 ms).
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

    /// <summary>
    /// Namespaces kept on each network ahead of time (root), as <see cref="NetnsPool.Size"/> for the private default: a
    /// join then costs no netlink round trip. Only while more than this many addresses are free, so a small network
    /// keeps room for containers that join it as their second network (which never take a ready one).
    /// </summary>
    public const int ReadyPerNetwork = 2;

    /// <summary>Called when a network may want ready members (created, or one taken): wakes the pool that makes them.</summary>
    public Action? WantReady { get; set; }

    private readonly Lock _lock = new();
    private readonly Dictionary<string, EngineNetwork> _networks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, NetworkMember> _members = [];
    private readonly string _stateDirectory;
    private readonly Lazy<NetworkHolder>? _holder;
    private readonly Func<string?> _findSlirp;
    private readonly bool _keepReady;
    private readonly HashSet<string> _resolvWritten = new(StringComparer.Ordinal);
    private long _nextVeth;

    /// <param name="stateDirectory">Where members' hosts files live.</param>
    /// <param name="holder">Rootless: what makes the namespaces (the engine cannot); null as root, where the engine makes them itself.</param>
    /// <param name="findSlirp">Where slirp4netns is (outbound networks), or null when it is not installed; by default looked up on PATH.</param>
    /// <param name="keepReady">Root: keep <see cref="ReadyPerNetwork"/> members ready on each network (<see cref="PlugOne"/>, run by the engine's <see cref="NetnsPool"/>).</param>
    public EngineNetworks(string stateDirectory, Lazy<NetworkHolder>? holder = null, Func<string?>? findSlirp = null, bool keepReady = false)
    {
        _keepReady = keepReady;
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
                if (_keepReady)
                {
                    WantReady?.Invoke();
                }

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
    /// veths made so far, so nothing is half-made. With <paramref name="ready"/> (from <see cref="TakeReady"/>, whose
    /// namespace and netlink socket are then <paramref name="containerNetns"/> and <paramref name="containerNetlink"/>)
    /// the first network's interface is there already; on a failure its address is freed, and the caller's closing
    /// of the namespace takes its veth.
    /// </summary>
    public NetworkMember Join(string containerId, IReadOnlyList<string> names, IReadOnlyList<string> aliases, IReadOnlyList<Network> networks, SafeFileHandle containerNetns, Netlink containerNetlink, ReadyMember? ready = null)
    {
        AwaitPlugged(networks);
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
                    Discard(ready);
                throw network is { Disposed: true }
                        ? Disposed(name)
                        : requested.Source is not null
                            ? new NetworkException(name, $"Network '{name}' belongs to another backend or engine: create it with NetworkBuilder().WithBackend(...) of the backend that runs this container.")
                            : new NetworkException(name, $"There is no network '{name}' in this engine: create it first (new NetworkBuilder().WithName(\"{name}\").BuildAsync()).");
                }

                if (!CheckNames(network, containerId, aliases, names, out var taken))
                {
                    Discard(ready);
                    throw taken;
                }

                mine.Add(network);
            }

            var member = new NetworkMember(
                containerId,
                [.. names, .. aliases],
                Path.Combine(_stateDirectory, $"{containerId}-hosts"),
                SharedResolvConf(outbound: mine.Any(n => n.Outbound is not null)));
            try
            {
                for (int i = 0; i < mine.Count; i++)
                {
                    if (i == 0 && ready is not null)
                    {
                        Claim(ready, member);
                        ready = null;
                    }
                    else
                    {
                        Attach(mine[i], member, $"eth{i.ToString(CultureInfo.InvariantCulture)}", containerNetns, containerNetlink);
                    }
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

                _members[containerId] = member;
                Rewrite(Neighbours(member).Append(member));
                return member;
            }
            catch
            {
                Discard(ready);
                Detach(member, deleteNow: true);
                File.Delete(member.HostsPath);
                throw;
            }
        }
    }

    /// <summary>
    /// Takes a container off its networks and updates the other members' hosts files. Its veths go with its network
    /// namespace, which the kernel dismantles in the background once its last process is gone (the container's are,
    /// when this is called): deleting them here would wait ~20 ms for the kernel's RCU grace periods, under its
    /// network lock, on every container's removal. An address is used again only after its old veth is gone (<see cref="EngineNetwork.TakeSlot"/>).
    /// </summary>
    public void Leave(string containerId)
    {
        lock (_lock)
        {
            if (!_members.Remove(containerId, out var member))
            {
                return;
            }

            var neighbours = Neighbours(member).ToList();
            Detach(member, deleteNow: false);
            File.Delete(member.HostsPath);
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
            while (network.Ready.TryDequeue(out var ready))
            {
                ready.Dispose();
            }

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

    /// <summary>
    /// Every member's <c>/etc/resolv.conf</c>: one file for the members of plain networks and one for those with a
    /// way out (<see cref="HostsFile.OutboundResolvConf"/>), each the same for all its members (bound read-only) and
    /// written on the first join that needs it (under the lock), so a start neither writes one nor a removal deletes
    /// one. They go with the state directory.
    /// </summary>
    private string SharedResolvConf(bool outbound)
    {
        var path = Path.Combine(_stateDirectory, outbound ? "outbound-resolv.conf" : "members-resolv.conf");
        if (_resolvWritten.Add(path))
        {
            File.WriteAllText(path, outbound ? HostsFile.OutboundResolvConf(ReadHostResolvConf()) : HostsFile.ResolvConf);
        }

        return path;
    }

    /// <summary>The host's /etc/resolv.conf; none (or unreadable) is a host without servers.</summary>
    private static string ReadHostResolvConf()
    {
        try
        {
            return File.ReadAllText("/etc/resolv.conf");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>A network's ready namespaces now (for tests: their veths are no member's).</summary>
    public IReadOnlyList<ReadyMember> ReadyNow(EngineNetwork network)
    {
        lock (_lock)
        {
            return [.. network.Ready];
        }
    }

    /// <summary>
    /// A namespace ready on <paramref name="requested"/> (root), or null when there is none (or the network is not one of
    /// this engine's live ones: <see cref="Join"/> then says why). The caller owns it and passes it to <see cref="Join"/>.
    /// </summary>
    public ReadyMember? TakeReady(Network requested)
    {
        ReadyMember? ready = null;
        lock (_lock)
        {
            var network = requested.Source as EngineNetwork ?? _networks.GetValueOrDefault(requested.Name!);
            if (network is { Disposed: false })
            {
                network.Ready.TryDequeue(out ready);
            }
        }

        if (ready is not null)
        {
            WantReady?.Invoke();
        }

        return ready;
    }

    /// <summary>
    /// Makes one namespace ready on a network that wants one: a fresh namespace (lo up) with <c>eth0</c> up and
    /// addressed, its veth's other end up on the bridge. Returns false when no network wants one. Runs on the pool's
    /// SCHED_IDLE thread (<paramref name="home"/> is its namespace), so the kernel work is never on a start's path; it
    /// holds the lock only to take an address and to hand the namespace over, never across a kernel call, so a start
    /// never waits for a thread that runs only when a core is idle.
    /// </summary>
    public bool PlugOne(SafeFileHandle home)
    {
        EngineNetwork? network;
        int slot;
        string? leftover;
        bool held = false;
        lock (_lock)
        {
            network = _networks.Values.FirstOrDefault(n => n.Ready.Count + n.Plugging < ReadyPerNetwork && n.FreeSlots > ReadyPerNetwork);
            if (network is null)
            {
                return false;
            }

            slot = network.TakeSlot(out leftover);
            network.Plugging++;
            // Keeps the descriptor valid while this thread joins the namespace, even if the network is disposed meanwhile.
            network.Namespace.DangerousAddRef(ref held);
        }

        ReadyMember? made = null;
        string vethName = NextVethName();
        try
        {
            made = Plug(network, slot, leftover, vethName, home);
        }
        catch (NativeException)
        {
            // The kernel refused (out of memory, a limit): containers join the live way, which reports it with the container.
        }
        finally
        {
            if (held)
            {
                network.Namespace.DangerousRelease();
            }
        }

        lock (_lock)
        {
            network.Plugging--;
            if (made is not null && !network.Disposed)
            {
                network.Ready.Enqueue(made);
                return true;
            }

            if (!network.Disposed)
            {
                network.FreeSlot(slot, vethName);
            }
        }

        made?.Dispose();
        return made is not null;
    }

    private static ReadyMember Plug(EngineNetwork network, int slot, string? leftover, string vethName, SafeFileHandle home)
    {
        // A socket of its own in the network's namespace: the network's is the joins' and is closed when it is disposed.
        using var bridgeSide = Netlink.OpenIn(network.Namespace);
        DeleteLeftover(bridgeSide, leftover);
        var (netns, inside) = NetworkNamespace.Make(home, Netlink.Open);
        try
        {
            int bridgeEnd = bridgeSide.CreateVethPair(vethName, "eth0", netns, Mtu);
            bridgeSide.SetMasterAndUp(bridgeEnd, network.BridgeIndex);
            int eth0 = inside.IndexOf("eth0");
            inside.AddAddress(eth0, network.Subnet.Member(slot), network.Subnet.PrefixLength);
            inside.SetUp(eth0);
            return new ReadyMember(network, netns, inside, slot, bridgeEnd, vethName);
        }
        catch
        {
            inside.Dispose();
            netns.Dispose();
            throw;
        }
    }

    /// <summary>
    /// On a network whose last free address the pool is making a ready namespace with, waits (up to a few seconds) until
    /// that one is ready to be claimed, so the pool never makes a join fail for want of an address. Happens only on a
    /// nearly full network; the pool's thread runs at idle priority, hence the generous bound.
    /// </summary>
    private void AwaitPlugged(IReadOnlyList<Network> networks)
    {
        var deadline = Environment.TickCount64 + 5_000;
        while (Environment.TickCount64 < deadline)
        {
            lock (_lock)
            {
                if (!networks.Any(requested => (requested.Source as EngineNetwork ?? _networks.GetValueOrDefault(requested.Name!)) is { Disposed: false, FreeSlots: 0, Ready.Count: 0, Plugging: > 0 }))
                {
                    return;
                }
            }

            Thread.Sleep(1);
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

    private static bool CheckNames(EngineNetwork network, string containerId, IReadOnlyList<string> aliases, IReadOnlyList<string> names, out NetworkException taken)
    {
        foreach (var other in network.Members.Values.Where(a => a.Member.ContainerId != containerId))
        {
            foreach (var alias in aliases.Concat(names.Take(1)))
            {
                if (other.Member.Names.Contains(alias, StringComparer.OrdinalIgnoreCase))
                {
                    taken = new NetworkException(network.Name, $"Network '{network.Name}': the name '{alias}' is already used there by container {other.Member.ContainerId}: give this container another alias (WithNetworkAliases) or name.");
                    return false;
                }
            }
        }

        taken = null!;
        return true;
    }

    private void Attach(EngineNetwork network, NetworkMember member, string interfaceName, SafeFileHandle containerNetns, Netlink containerNetlink)
    {
        int slot = network.TakeSlot(out var leftover);
        if (slot < 0 && network.Ready.TryDequeue(out var spare))
        {
            // Every free address is held by a ready namespace (this container joins the network as its second or
            // later one, which never takes a ready one): give one up, its veth deleted now so the address is free.
            network.Netlink.DeleteLink(spare.BridgeLinkIndex);
            spare.Dispose();
            network.FreeSlot(spare.Slot);
            slot = network.TakeSlot(out leftover);
        }

        if (slot < 0)
        {
            throw new NetworkException(network.Name, $"Network '{network.Name}' has no free address: its subnet {network.Subnet} holds {network.Subnet.Capacity} containers and all are taken. Dispose containers you no longer need, or spread them over more networks.");
        }

        int bridgeEnd = 0;
        string vethName = NextVethName();
        try
        {
            DeleteLeftover(network.Netlink, leftover);
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

        var attachment = new Attachment(network, member, slot, bridgeEnd, vethName, interfaceName);
        member.Attachments.Add(attachment);
        network.Members[member.ContainerId] = attachment;
    }

    /// <summary>A ready namespace becomes the member's first network's place: no kernel call, it is all there.</summary>
    private static void Claim(ReadyMember ready, NetworkMember member)
    {
        var attachment = new Attachment(ready.Network, member, ready.Slot, ready.BridgeLinkIndex, ready.BridgeLinkName, "eth0");
        member.Attachments.Add(attachment);
        ready.Network.Members[member.ContainerId] = attachment;
    }

    /// <summary>A ready namespace taken but not used (the join failed before it): its address is free again once its veth, which goes with the namespace the caller closes, is gone.</summary>
    private static void Discard(ReadyMember? ready)
    {
        if (ready is not null && !ready.Network.Disposed)
        {
            ready.Network.FreeSlot(ready.Slot, ready.BridgeLinkName);
        }
    }

    /// <summary>Takes a member off its networks and frees its addresses.</summary>
    /// <param name="member">The member.</param>
    /// <param name="deleteNow">
    /// Delete the veths now (a join that failed: the namespace may live on, so it must be off the bridge at once), or
    /// leave them to go with the container's namespace (a container that is gone), the address free once they have.
    /// </param>
    private static void Detach(NetworkMember member, bool deleteNow)
    {
        foreach (var attachment in member.Attachments)
        {
            attachment.Network.Members.Remove(member.ContainerId);
            if (attachment.Network.Disposed)
            {
                continue;
            }

            if (deleteNow)
            {
                // Deleting one end takes the other (in the container) with it (ENODEV when already gone: fine).
                attachment.Network.Netlink.DeleteLink(attachment.BridgeLinkIndex);
                attachment.Network.FreeSlot(attachment.Slot);
            }
            else
            {
                attachment.Network.FreeSlot(attachment.Slot, attachment.BridgeLinkName);
            }
        }

        member.Attachments.Clear();
    }

    /// <summary>veth names are per namespace; a counter keeps them unique in a network's for the engine's life.</summary>
    private string NextVethName() => "v" + Interlocked.Increment(ref _nextVeth).ToString("x", CultureInfo.InvariantCulture);

    /// <summary>
    /// Deletes the veth that last had an address when it still exists: its namespace outlived its container (something
    /// held it open), so the address it answers for must leave the bridge before it is handed out again.
    /// </summary>
    private static void DeleteLeftover(Netlink network, string? leftover)
    {
        if (leftover is not null && network.IndexOf(leftover) is > 0 and var index)
        {
            network.DeleteLink(index);
        }
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
