using IsoTest.TestSupport;
using Xunit;

namespace IsoTest.Tests.Conformance;

/// <summary>
/// User-defined networks on both backends: members reach each other by name and alias on any port,
/// other networks stay apart, and the host is reached only on ports exposed on purpose. Busybox nc
/// serves and connects (the static busybox resolves names from /etc/hosts on the engine, from Docker's
/// embedded DNS on Docker). The built-in engine runs them root and rootless.
/// </summary>
public abstract partial class ConformanceTests
{
    /// <summary>Networks of this process still alive on the backend (for the leak check).</summary>
    protected abstract Task<int> LiveNetworksAsync();

    private ContainerBuilder Server(INetwork network, int port, string reply, params string[] aliases) =>
        Box("nc", "-ll", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-e", "/bin/echo", reply)
            .WithNetwork(network).WithNetworkAliases(aliases);

    /// <summary>Connects to host:port (retrying while the server starts) and prints what it says, or "unreachable".</summary>
    private static string Ask(string host, int port) =>
        $"r=; for i in $(seq 40); do r=$(nc -w 2 {host} {port} </dev/null 2>/dev/null) && [ -n \"$r\" ] && break; sleep 0.1; done; echo ${{r:-unreachable}}";

    private async Task<string> RunOnAsync(string script, params INetwork[] networks)
    {
        var builder = Shell(script);
        foreach (var network in networks)
        {
            builder = builder.WithNetwork(network);
        }

        var (container, exit) = await RunToExitAsync(builder);
        await using var _ = container;
        Assert.Equal(0, exit);
        return Out(container);
    }

    private async Task<INetwork> NetworkAsync() => await new NetworkBuilder().WithBackend(Backend).BuildAsync(Timeout());

    [Fact]
    public async Task Network_MembersReachEachOtherByNameAndAlias()
    {
        int before = await LiveNetworksAsync();
        await using (var network = await NetworkAsync())
        {
            await using var server = await Server(network, 7101, "pong", "db").WithName("srv-" + TestId[..8]).StartAsync(Timeout());
            var output = await RunOnAsync($"{Ask("db", 7101)}; {Ask(server.Name, 7101)}", network);
            Assert.Equal("pong\npong\n", output);
        }

        Assert.Equal(before, await LiveNetworksAsync());
    }

    [Fact]
    public async Task Network_TwoNetworksAreIsolated_AndAContainerOnBothReachesEach()
    {
        await using var red = await NetworkAsync();
        await using var blue = await NetworkAsync();
        await using var redServer = await Server(red, 7102, "red", "red-db").StartAsync(Timeout());
        await using var blueServer = await Server(blue, 7102, "blue", "blue-db").StartAsync(Timeout());

        Assert.Equal("red\nred\nblue\n", await RunOnAsync($"{Ask("red-db", 7102)}; {Ask("red-db", 7102)}; {Ask("blue-db", 7102)}", red, blue));
        Assert.Equal("red\nunreachable\n", await RunOnAsync($"{Ask("red-db", 7102)}; nc -w 2 blue-db 7102 </dev/null || echo unreachable", red));
    }

    [Fact]
    public async Task Network_ReachesOnlyTheHostPortsExposedOnPurpose()
    {
        using var exposed = new LineServer("exposed");
        using var hidden = new LineServer("hidden");
        await using var network = await NetworkAsync();
        await network.ExposeHostPortsAsync(exposed.Port, Timeout());

        var output = await RunOnAsync(
            $"{Ask("host.isotest.internal", exposed.Port)}; {Ask("host.docker.internal", exposed.Port)}; " +
            $"nc -w 2 host.isotest.internal {hidden.Port} </dev/null | grep . || echo unreachable",
            network);
        Assert.Equal("exposed\nexposed\nunreachable\n", output);
    }

    /// <summary>
    /// The target is a server in a network namespace beyond the host (made by the test, so no internet is needed): Docker
    /// forwards and masquerades to it from a non-internal network, the engine reaches it through slirp4netns; an internal
    /// (Docker) or plain (engine) network has no way there. Root only: an unprivileged test cannot make the namespace's
    /// link in the host's namespace (the engine's rootless outbound tests use the host's own address instead, which a
    /// Docker internal network reaches too: its default route leads to the host).
    /// </summary>
    [RootOnlyFact("the namespace beyond the host is linked to the host's namespace, which only root can change.")]
    public async Task Network_WithOutboundAccess_ReachesBeyondTheHost_AndAPlainOneDoesNot()
    {
        await using var outside = await OutsideNamespace.StartAsync("outside");
        await using var outbound = await new NetworkBuilder().WithOutboundAccess().WithBackend(Backend).BuildAsync(Timeout());
        await using var plain = await NetworkAsync();

        Assert.Equal("outside\n", await RunOnAsync(Ask(outside.Address, OutsideNamespace.Port), outbound));
        Assert.Equal("unreachable\n", await RunOnAsync($"nc -w 2 {outside.Address} {OutsideNamespace.Port} </dev/null | grep . || echo unreachable", plain));
    }

    [Fact]
    public async Task Network_JoiningADisposedNetwork_FailsNamingIt()
    {
        var network = await NetworkAsync();
        await network.DisposeAsync();

        var e = await Assert.ThrowsAsync<ContainerStartException>(() => Box("true").WithNetwork(network).StartAsync(Timeout()));
        Assert.Contains($"'{network.Name}' was disposed", e.Message);
        await AssertNothingLeftAsync(TestId);
    }
}
