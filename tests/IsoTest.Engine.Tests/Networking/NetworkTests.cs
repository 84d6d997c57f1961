using System.Net;
using System.Net.Sockets;
using IsoTest.Engine.Tests.Support;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Networking;

/// <summary>
/// User-defined networks on the real kernel: members reach each other by name and alias on any port,
/// nothing else; /etc/hosts follows joins and leaves; bad input leaves no veth behind.
/// Names are resolved with getent and bash's /dev/tcp (dynamic glibc); busybox nc serves and connects by address.
/// </summary>
public sealed class NetworkTests : IClassFixture<EngineFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly EngineBackend _engine;

    public NetworkTests(EngineFixture fixture) => _engine = fixture.Engine;

    /// <summary>A server that answers every connection on <paramref name="port"/> with <paramref name="reply"/>.</summary>
    internal static ContainerSpec Server(INetwork network, string name, int port, string reply, params string[] aliases) =>
        Specs.Host("busybox", "nc", "-ll", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-e", "/bin/echo", reply)
            with { Name = name, Networks = [Network.Join(network)], NetworkAliases = aliases };

    /// <summary>A shell that connects to host:port by name (bash's /dev/tcp resolves through /etc/hosts) and prints the first line.</summary>
    internal static string Fetch(string host, int port) =>
        $"timeout 5 bash -c 'exec 3<>/dev/tcp/{host}/{port} && head -n1 <&3' 2>&1";

    [Fact]
    public async Task Members_ReachEachOtherByNameAndAlias_OnAnyPort()
    {
        await using var network = await NewNetworkAsync();
        await using var server = await StartAsync(Server(network, Unique("srv"), 7001, "pong-7001", "db", "cache.local"));
        await WaitListeningAsync(server, 7001);

        var result = await _engine.RunAsync(Specs.Shell(
            $"{Fetch(server.Name, 7001)}; {Fetch("db", 7001)}; {Fetch("cache.local", 7001)}; ip -o -4 addr show eth0 | wc -l") with { Networks = [Network.Join(network)] });

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(["pong-7001", "pong-7001", "pong-7001", "1"], Lines(result.Stdout));
    }

    [Fact]
    public async Task HostsFile_FollowsMembersJoiningAndLeaving()
    {
        await using var network = await NewNetworkAsync();
        await using var watcher = await StartAsync(Specs.Host("sleep", "600") with { Name = Unique("watch"), Networks = [Network.Join(network)] });
        Assert.DoesNotContain("late", await HostsAsync(watcher));

        var late = await StartAsync(Specs.Host("sleep", "600") with { Name = Unique("late"), Networks = [Network.Join(network)], NetworkAliases = ["late-alias"] });
        var hosts = await HostsAsync(watcher);
        Assert.Contains(late.Name, hosts);
        Assert.Contains("late-alias", hosts);

        await late.DisposeAsync();
        hosts = await HostsAsync(watcher);
        Assert.DoesNotContain("late-alias", hosts);
        Assert.Contains("host.isotest.internal", hosts);
        Assert.Contains("host.docker.internal", hosts);

        var resolv = await watcher.ExecAsync(["cat", "/etc/resolv.conf"]);
        Assert.Contains("options ndots:0", resolv.Stdout);
        Assert.DoesNotContain("nameserver", resolv.Stdout);
    }

    [Fact]
    public async Task TwoNetworks_AreIsolated_AndAContainerOnBothReachesEach()
    {
        await using var red = await NewNetworkAsync();
        await using var blue = await NewNetworkAsync();
        await using var redServer = await StartAsync(Server(red, Unique("red"), 7002, "red", "red-db"));
        await using var blueServer = await StartAsync(Server(blue, Unique("blue"), 7002, "blue", "blue-db"));
        await WaitListeningAsync(redServer, 7002);
        await WaitListeningAsync(blueServer, 7002);
        var redAddress = (await redServer.ExecAsync(["sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1"])).Stdout.Trim();

        // Only on red: blue's names are unknown and blue's address unreachable (no route, no shared bridge).
        var blueAddress = (await blueServer.ExecAsync(["sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1"])).Stdout.Trim();
        var onRed = await _engine.RunAsync(Specs.Shell(
            $"{Fetch("red-db", 7002)}; getent hosts blue-db || echo no-name; busybox nc -w 2 {blueAddress} 7002 </dev/null || echo no-path") with { Networks = [Network.Join(red)] });
        Assert.Equal(["red", "no-name", "no-path"], Lines(onRed.Stdout));

        // On both: one interface per network, each server by its alias.
        var onBoth = await _engine.RunAsync(Specs.Shell(
            $"{Fetch("red-db", 7002)}; {Fetch("blue-db", 7002)}; echo $(ls /sys/class/net)") with { Networks = [Network.Join(red), Network.Join(blue)] });
        Assert.Equal(["red", "blue", "eth0 eth1 lo"], Lines(onBoth.Stdout));
        Assert.NotEqual(redAddress, blueAddress);
    }

    [Fact]
    public async Task Members_HaveNoPathToTheHostsLoopback_AndReachOnlyExposedHostPorts()
    {
        using var exposed = new LineServer("exposed");
        using var hidden = new LineServer("hidden");
        await using var network = await NewNetworkAsync();
        await network.ExposeHostPortsAsync(exposed.Port);
        var hostAddress = LineServer.HostAddress();

        var result = await _engine.RunAsync(Specs.Shell(
            $"{Fetch("host.isotest.internal", exposed.Port)}; {Fetch("host.docker.internal", exposed.Port)}; " +
            $"{Fetch("host.isotest.internal", hidden.Port)} >/dev/null 2>&1 || echo refused; " +
            $"busybox nc -w 2 127.0.0.1 {hidden.Port} </dev/null || echo own-loopback; " +
            $"busybox nc -w 2 {hostAddress} {hidden.Port} </dev/null || echo no-host") with { Networks = [Network.Join(network)] });

        Assert.Equal(["exposed", "exposed", "refused", "own-loopback", "no-host"], Lines(result.Stdout));
    }

    [Fact]
    public async Task TwentyMembers_AllReachEachOther()
    {
        const int Count = 20;
        await using var network = await NewNetworkAsync();
        var members = new List<IContainer>();
        try
        {
            for (int i = 0; i < Count; i++)
            {
                members.Add(await StartAsync(Server(network, Unique($"m{i}"), 7003, $"m{i}", $"member{i}")));
            }

            foreach (var member in members)
            {
                await WaitListeningAsync(member, 7003);
            }

            // Every member asks every other one by alias: 380 connections across the bridge.
            var script = string.Join("; ", Enumerable.Range(0, Count).Select(j => Fetch($"member{j}", 7003)));
            foreach (var (member, i) in members.Select((m, i) => (m, i)))
            {
                var result = await member.ExecAsync(["sh", "-c", script]);
                Assert.Equal(Enumerable.Range(0, Count).Select(j => $"m{j}"), Lines(result.Stdout));
            }
        }
        finally
        {
            foreach (var member in members)
            {
                await member.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task JoiningADisposedNetwork_FailsNamingItAndLeavesNoVeth()
    {
        var network = await NewNetworkAsync();
        await network.DisposeAsync();

        var e = await Assert.ThrowsAsync<ContainerStartException>(() => _engine.CreateAsync(Specs.Host("true") with { Networks = [Network.Join(network)] }));
        Assert.Contains($"Network '{network.Name}' was disposed", e.Message);
        Assert.Equal(0, _engine.LiveContainers);
    }

    [Fact]
    public async Task AnAliasUsedTwice_FailsNamingTheNetwork_AndTheFirstMemberKeepsIt()
    {
        await using var network = await NewNetworkAsync();
        await using var first = await StartAsync(Specs.Host("sleep", "600") with { Networks = [Network.Join(network)], NetworkAliases = ["db"] });

        var e = await Assert.ThrowsAsync<ContainerStartException>(() => _engine.CreateAsync(Specs.Host("sleep", "600") with { Networks = [Network.Join(network)], NetworkAliases = ["db"] }));
        Assert.Contains($"Network '{network.Name}': the name 'db' is already used", e.Message);
        Assert.Equal(1, await MemberPortsAsync((Engine.Networking.EngineNetwork)network, 1));
    }

    [Fact]
    public async Task AnExhaustedAddressPool_FailsNamingTheNetwork_AndLeavesNoVeth()
    {
        // A /29 holds 5 members.
        await using var network = await _engine.CreateNetworkAsync(new NetworkSpec(Unique("small"), false), prefixLength: 29);
        var members = new List<IContainer>();
        try
        {
            for (int i = 0; i < 5; i++)
            {
                members.Add(await StartAsync(Specs.Host("sleep", "600") with { Networks = [Network.Join(network)] }));
            }

            var e = await Assert.ThrowsAsync<ContainerStartException>(() => _engine.CreateAsync(Specs.Host("sleep", "600") with { Networks = [Network.Join(network)] }));
            Assert.Contains($"Network '{network.Name}' has no free address", e.Message);
            Assert.Equal(5, await MemberPortsAsync((Engine.Networking.EngineNetwork)network, 5));
        }
        finally
        {
            foreach (var member in members)
            {
                await member.DisposeAsync();
            }
        }

        Assert.Equal(0, await MemberPortsAsync((Engine.Networking.EngineNetwork)network, 0));
        Assert.Equal(0, _engine.LiveContainers);
    }

    [Fact]
    public async Task AnAddressIsGivenAgain_OnlyOnceTheVethThatHadItIsGone()
    {
        // A /29 holds 5 members; addresses are handed out next-fit, so 5 more joins come round to the first one's again.
        await using var network = await _engine.CreateNetworkAsync(new NetworkSpec(Unique("reuse"), false), prefixLength: 29);
        var engineNetwork = (Engine.Networking.EngineNetwork)network;
        var first = await StartAsync(Specs.Host("sleep", "600") with { Networks = [Network.Join(network)] });
        var address = await AddressAsync(first);

        // Something outside holds the departed member's namespace open, so its veth stays on the bridge with the address.
        var ns = (await first.ExecAsync(["readlink", "/proc/self/ns/net"])).Stdout.Trim();
        var holder = Directory.EnumerateDirectories("/proc").First(d => int.TryParse(Path.GetFileName(d), out _) && SafeLink(Path.Combine(d, "ns", "net")) == ns);
        using (var held = File.OpenHandle(Path.Combine(holder, "ns", "net")))
        {
            await first.DisposeAsync();
            Assert.Equal(1, await MemberPortsAsync(engineNetwork, 1));

            var members = new List<IContainer>();
            try
            {
                for (int i = 0; i < 5; i++)
                {
                    members.Add(await StartAsync(Specs.Host("sleep", "600") with { Networks = [Network.Join(network)] }));
                }

                var addresses = new List<string>();
                foreach (var member in members)
                {
                    addresses.Add(await AddressAsync(member));
                }

                Assert.Contains(address, addresses);
                Assert.Equal(5, addresses.Distinct().Count());
                Assert.Equal(5, await MemberPortsAsync(engineNetwork, 5)); // the old veth was deleted before its address was given again
                var heir = members[addresses.IndexOf(address)];
                var other = members.First(m => m != heir);
                var reached = await other.ExecAsync(["sh", "-c", $"busybox ping -c 1 -W 2 {heir.Name} >/dev/null && echo reached"]);
                Assert.Equal("reached", reached.Stdout.Trim());
            }
            finally
            {
                foreach (var member in members)
                {
                    await member.DisposeAsync();
                }
            }
        }
    }

    private static async Task<string> AddressAsync(IContainer container) =>
        (await container.ExecAsync(["sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'"])).Stdout.Trim();

    private static string? SafeLink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    [Fact]
    public async Task ATakenOrInvalidName_IsRefused()
    {
        await using var network = await NewNetworkAsync();
        var taken = await Assert.ThrowsAsync<NetworkException>(() => new NetworkBuilder().WithName(network.Name).WithBackend(_engine).BuildAsync());
        Assert.Contains($"A network named '{network.Name}' already exists", taken.Message);
        var invalid = await Assert.ThrowsAsync<NetworkException>(() => new NetworkBuilder().WithName("-bad name").WithBackend(_engine).BuildAsync());
        Assert.Contains("'-bad name' is not a valid network name", invalid.Message);
    }

    internal static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    internal static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private Task<INetwork> NewNetworkAsync() => new NetworkBuilder().WithBackend(_engine).BuildAsync();

    private Task<IContainer> StartAsync(ContainerSpec spec) => StartAsync(_engine, spec);

    internal static async Task<IContainer> StartAsync(EngineBackend engine, ContainerSpec spec)
    {
        using var cts = new CancellationTokenSource(Patience);
        var container = await engine.CreateAsync(spec, cts.Token);
        await container.StartAsync(cts.Token);
        return container;
    }

    private static async Task<string> HostsAsync(IContainer container) => (await container.ExecAsync(["cat", "/etc/hosts"])).Stdout;

    internal static async Task WaitListeningAsync(IContainer container, int port)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await ((IContainerProbes)container).IsPortOpenAsync(port, CancellationToken.None))
        {
            Assert.True(DateTime.UtcNow < deadline, $"nothing listened on {port} in {container.Name}");
            await Task.Delay(10);
        }
    }

    /// <summary>
    /// Veth ends in the network's namespace that are no ready namespace's (as root the engine keeps some ready on the
    /// network), once the count is <paramref name="expected"/> or after 10 s: a departed member's veth goes with its
    /// namespace, which the kernel dismantles in the background.
    /// </summary>
    internal static async Task<int> MemberPortsAsync(Engine.Networking.EngineNetwork network, int expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var before = network.ReadyNow.Select(r => r.BridgeLinkName).ToList();
            var links = network.Netlink.LinkNames();
            var after = network.ReadyNow.Select(r => r.BridgeLinkName);
            int count = links.Count(n => n is not "lo" and not "br0" && !before.Contains(n) && !after.Contains(n));
            if (count == expected || DateTime.UtcNow > deadline)
            {
                return count;
            }

            await Task.Delay(20);
        }
    }
}

/// <summary>kill -9 of an engine that owns a network leaves no namespace, bridge, veth or hosts file behind.</summary>
[Collection(SerialCollection.Name)]
public sealed class NetworkLeakTests
{
    [Fact]
    public Task OwnerKilledWithSigkill_LeavesNoNamespaceBridgeVethOrAddress() => KillOwnerAsync(outbound: false);

    /// <summary>An outbound network's slirp4netns is not the engine's descendant in any way the kernel would kill: it exits because its exit descriptor closed.</summary>
    [Fact]
    public Task OwnerOfAnOutboundNetworkKilledWithSigkill_LeavesNoSlirp4netnsEither() => KillOwnerAsync(outbound: true);

    private static async Task KillOwnerAsync(bool outbound)
    {
        var hostLinks = HostLinks();
        var ownerDll = Path.Combine(AppContext.BaseDirectory.Replace("IsoTest.Engine.Tests", "IsoTest.Engine.Tests.Owner", StringComparison.Ordinal), "IsoTest.Engine.Tests.Owner.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", outbound ? [ownerDll, "network", "3", "outbound"] : [ownerDll, "network", "3"]) { RedirectStandardOutput = true };
        using var owner = System.Diagnostics.Process.Start(start)!;
        var ready = await owner.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(90));
        Assert.StartsWith("ready ", ready);
        var fields = ready!.Split(' ');
        var engineId = fields[1];
        var namespaces = fields[2..];
        // The network's, three members' and, as root, the ones ready on the network.
        Assert.Equal(4 + (RootOnlyFactAttribute.IsRoot ? Engine.Networking.EngineNetworks.ReadyPerNetwork : 0), namespaces.Distinct().Count());
        Assert.All(namespaces, ns => Assert.NotEmpty(Holders(ns)));
        int slirp = 0;
        if (outbound)
        {
            var line = await owner.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.StartsWith("slirp4netns ", line);
            slirp = int.Parse(line!["slirp4netns ".Length..], System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(OutboundNetworkTests.Alive(slirp));
        }

        owner.Kill(); // SIGKILL: no managed clean-up runs
        await owner.WaitForExitAsync();

        // The namespaces were held only by the engine's descriptors, the members' processes (which die with their
        // shim) and slirp4netns (which exits once its exit descriptor, held by the engine, closes): once nothing in
        // /proc refers to one, the kernel frees it with its bridge, veths, tap and addresses.
        // A freed namespace's inode number is soon given to a new one (tests running alongside make many): so each
        // counts as gone the first time nothing refers to it, and is not looked at again.
        var gone = new HashSet<string>();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((gone.Count < namespaces.Length || (slirp > 0 && OutboundNetworkTests.Alive(slirp))) && DateTime.UtcNow < deadline)
        {
            gone.UnionWith(namespaces.Where(ns => Holders(ns).Count == 0));
            await Task.Delay(50);
        }

        Assert.All(namespaces, ns => Assert.True(gone.Contains(ns), $"{ns} is still held by {string.Join(", ", Holders(ns))}"));
        Assert.False(slirp > 0 && OutboundNetworkTests.Alive(slirp), $"slirp4netns {slirp} outlived its engine");
        // Nothing was ever made in the host's namespace. Only links named as the engine names its own count: other
        // programs on a shared machine (dockerd's veths) come and go meanwhile.
        Assert.DoesNotContain(HostLinks().Except(hostLinks), name => System.Text.RegularExpressions.Regex.IsMatch(name, "^(v[0-9a-f]+|br0|eth[0-9]+|tap[0-9]+)$"));

        // The members' hosts files lived in the engine's state directory: the next engine sweeps it.
        await using var next = new EngineBackend();
        Assert.False(Directory.Exists(Path.Combine(Path.GetDirectoryName(next.StateDirectory)!, engineId)));
    }

    private static List<string> HostLinks()
    {
        using var host = Engine.Native.Netlink.Open();
        return [.. host.LinkNames().Order(StringComparer.Ordinal)];
    }

    /// <summary>Processes or descriptors that refer to a namespace (<c>net:[inode]</c>).</summary>
    private static List<string> Holders(string ns)
    {
        var holders = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                if (new FileInfo(Path.Combine(dir, "ns", "net")).LinkTarget == ns)
                {
                    holders.Add(dir);
                }

                foreach (var fd in Directory.EnumerateFiles(Path.Combine(dir, "fd")))
                {
                    if (new FileInfo(fd).LinkTarget == ns)
                    {
                        holders.Add(fd);
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the process ended while being read
            }
        }

        return holders;
    }
}
