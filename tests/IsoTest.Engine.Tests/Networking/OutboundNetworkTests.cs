using System.Globalization;
using System.Net;
using System.Net.Sockets;
using IsoTest.Engine.Networking;
using IsoTest.Engine.Tests.Support;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Networking;

/// <summary>
/// Outbound networks (<see cref="NetworkBuilder.WithOutboundAccess"/>) on the real kernel, root and rootless: their
/// members reach past the network (through slirp4netns) where a plain network's cannot, never the host's loopback,
/// and their way out goes with the network. No internet is needed: the target is a server on the host's own
/// non-loopback address (the conformance suite adds, as root, a namespace beyond the host on both backends).
/// </summary>
public sealed class OutboundNetworkTests : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine;

    public OutboundNetworkTests(EngineFixture fixture) => _engine = fixture.Engine;

    [Fact]
    public async Task OutboundMember_ReachesAHostAddress_APlainMemberDoesNot()
    {
        using var outside = new LineServer("outside", LineServer.HostAddress());
        await using var outbound = await new NetworkBuilder().WithOutboundAccess().WithBackend(_engine).BuildAsync();
        await using var plain = await new NetworkBuilder().WithBackend(_engine).BuildAsync();
        string target = $"{LineServer.HostAddress()} {outside.Port}";

        var fromOutbound = await RunAsync($"busybox nc -w 5 {target} </dev/null || echo unreachable; ip route show default | cut -d' ' -f1-3", outbound);
        var fromPlain = await RunAsync($"busybox nc -w 2 {target} </dev/null || echo unreachable; ip route show default | wc -l", plain);
        // On both, it goes out through the outbound one (whichever comes first); the plain one stays a dead end on its own.
        var fromBoth = await RunAsync($"busybox nc -w 5 {target} </dev/null || echo unreachable", plain, outbound);

        Assert.Equal(["outside", $"default via {((EngineNetwork)outbound).Subnet.Gateway}"], NetworkTests.Lines(fromOutbound));
        Assert.Equal(["unreachable", "0"], NetworkTests.Lines(fromPlain));
        Assert.Equal(["outside"], NetworkTests.Lines(fromBoth));
    }

    [Fact]
    public async Task OutboundMember_HasNoPathToTheHostsLoopback_AndStillReachesOnlyExposedHostPorts()
    {
        using var exposed = new LineServer("exposed");
        using var hidden = new LineServer("hidden");
        await using var network = await new NetworkBuilder().WithOutboundAccess().WithBackend(_engine).BuildAsync();
        await network.ExposeHostPortsAsync(exposed.Port);

        // 10.0.2.2 is slirp4netns's name for the host, which --disable-host-loopback refuses; 127.0.0.1 is the container's own.
        var result = await RunAsync(
            $"{NetworkTests.Fetch("host.isotest.internal", exposed.Port)}; " +
            $"{NetworkTests.Fetch("host.isotest.internal", hidden.Port)} >/dev/null 2>&1 || echo refused; " +
            $"busybox nc -w 2 10.0.2.2 {hidden.Port} </dev/null || echo no-host-loopback; " +
            $"busybox nc -w 2 127.0.0.1 {hidden.Port} </dev/null || echo own-loopback", network);

        Assert.Equal(["exposed", "refused", "no-host-loopback", "own-loopback"], NetworkTests.Lines(result));
    }

    [Fact]
    public async Task OutboundMembers_ReachEachOtherByAlias_AndAPlainNetworkStaysApart()
    {
        await using var outbound = await new NetworkBuilder().WithOutboundAccess().WithBackend(_engine).BuildAsync();
        await using var plain = await new NetworkBuilder().WithBackend(_engine).BuildAsync();
        await using var server = await NetworkTests.StartAsync(_engine, NetworkTests.Server(outbound, NetworkTests.Unique("srv"), 7201, "pong-7201", "db"));
        var address = ((EngineNetwork)outbound).Subnet.Member(0);
        await NetworkTests.WaitListeningAsync(server, 7201);

        var onOutbound = await RunAsync(NetworkTests.Fetch("db", 7201), outbound);
        var onPlain = await RunAsync($"getent hosts db || echo no-name; busybox nc -w 2 {address} 7201 </dev/null || echo no-path", plain);

        Assert.Equal(["pong-7201"], NetworkTests.Lines(onOutbound));
        Assert.Equal(["no-name", "no-path"], NetworkTests.Lines(onPlain));
    }

    [Fact]
    public async Task DisposingAnOutboundNetwork_StopsItsSlirp4netns()
    {
        var network = (EngineNetwork)await new NetworkBuilder().WithOutboundAccess().WithBackend(_engine).BuildAsync();
        int pid = network.Outbound!.Pid;
        Assert.True(Alive(pid));

        await network.DisposeAsync();

        Assert.False(Alive(pid));
    }

    [Fact]
    public void OutboundWithoutSlirp4netns_FailsNamingThePackageAndTheFix_AndMakesNothing()
    {
        var state = Directory.CreateTempSubdirectory("isotest-outbound-");
        try
        {
            var networks = new EngineNetworks(state.FullName, holder: null, findSlirp: () => null);

            var e = Assert.Throws<NetworkException>(() => networks.Create(new NetworkSpec("needs-out", Outbound: true)));

            Assert.Equal("Network 'needs-out': outbound access on the built-in engine goes through slirp4netns, which is not installed (not on PATH, nor in /usr/bin): install Debian's package (apt-get install slirp4netns), or drop WithOutboundAccess().", e.Message);
            Assert.Equal(0, networks.Count);
            Assert.Empty(state.EnumerateFileSystemInfos());
        }
        finally
        {
            state.Delete(recursive: true);
        }
    }

    /// <summary>Whether a process runs (a zombie waiting for its reaper counts as gone).</summary>
    internal static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    [Fact]
    public async Task OutboundMember_ResolvesThroughTheHostsNameservers_APlainMemberThroughNone()
    {
        // As Docker does for user-defined networks: the host's servers, minus loopback ones (127.0.0.1 inside is the
        // member's own). Only the file is checked: a lookup would leave the test's own namespaces.
        var expected = File.ReadAllLines("/etc/resolv.conf")
            .Select(l => l.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .Where(w => w.Length >= 2 && w[0] == "nameserver" && IPAddress.TryParse(w[1].Split('%')[0], out var a) && !IPAddress.IsLoopback(a))
            .Select(w => "nameserver " + w[1])
            .ToList();
        await using var outbound = await new NetworkBuilder().WithOutboundAccess().WithBackend(_engine).BuildAsync();
        await using var plain = await new NetworkBuilder().WithBackend(_engine).BuildAsync();

        var fromOutbound = await RunAsync("grep '^nameserver' /etc/resolv.conf || true", outbound);
        var fromPlain = await RunAsync("grep -c '^nameserver' /etc/resolv.conf || true", plain);

        Assert.Equal(expected, NetworkTests.Lines(fromOutbound));
        Assert.Equal(["0"], NetworkTests.Lines(fromPlain));
    }

    private async Task<string> RunAsync(string script, params INetwork[] networks)
    {
        var result = await _engine.RunAsync(Specs.Shell(script) with { Networks = [.. networks.Select(n => Network.Join(n))] });
        Assert.True(result.ExitCode == 0, result.Stderr);
        return result.Stdout;
    }
}
