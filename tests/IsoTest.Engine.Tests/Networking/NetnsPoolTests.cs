using IsoTest.Engine.Networking;
using IsoTest.Engine.Tests.Support;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Networking;

/// <summary>
/// Network namespaces made ahead of time (as root by the engine, rootless by a maker in the shared user namespace): each container gets a fresh one, never one another container used, and an engine that
/// goes away closes the ones it still holds.
/// </summary>
/// <remarks>Serial: it reads this process's descriptors, which other test classes' engines add to.</remarks>
[Collection(SerialCollection.Name)]
public sealed class NetnsPoolTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [RootlessOnlyFact]
    public async Task Rootless_HasNoRootPool()
    {
        // Rootless the namespace must belong to the container's user namespace: only the shared one's pool can help.
        await using var engine = new EngineBackend();

        Assert.Null(engine.Netns);
        Assert.Equal(0, (await engine.RunAsync(Specs.Host("true"))).ExitCode);
    }

    [RootlessOnlyFact]
    public async Task Rootless_EachContainerJoinsANamespaceMadeAheadInTheSharedUserNamespace_FreshAndNeverReused()
    {
        await using var engine = new EngineBackend();
        var pools = engine.UserNetns;
        Assert.True(pools is not null, $"rootless with subordinate ranges only (/etc/subuid, /etc/subgid): {engine.SubordinateIdsMissing}");
        var host = Inode(File.ResolveLinkTarget("/proc/self/ns/net", false)!.Name);

        // Namespace inodes are recycled once a namespace is gone: keep every container alive to compare. Each one
        // leaves a socket listening on port 4711 (state 0A in /proc/net/tcp or tcp6): the next must not see it.
        const string Listeners = "cat /proc/net/tcp /proc/net/tcp6 | awk '$4 == \"0A\"' | wc -l";
        var containers = new List<IContainer>();
        try
        {
            // The first start with these maps starts the maker: it makes its own namespace, as without a pool.
            containers.Add(await StartListeningAsync(engine));
            Assert.Equal(0, pools.Served);

            var seen = new List<string>();
            for (int i = 0; i < 4; i++)
            {
                var ready = await ReadyUserNamespacesAsync(pools);
                var container = await engine.CreateAsync(Specs.Host("sleep", "60"));
                containers.Add(container);
                await container.StartAsync();
                Assert.Equal(i + 1, pools.Served); // this start took one made ahead

                var probe = await container.ExecAsync(["sh", "-c", $"readlink /proc/self/ns/net; echo $(ls /sys/class/net); cat /sys/class/net/lo/operstate; {Listeners}"]);

                var lines = probe.Stdout.Split('\n');
                var inside = Inode(lines[0]);
                Assert.NotEqual(host, inside);
                Assert.Contains(inside, ready);            // it joined one made ahead of time...
                Assert.DoesNotContain(inside, seen);       // ...that no other container has
                Assert.Equal("lo", lines[1]);              // and it is as fresh as a new one: lo only, up
                Assert.Equal("unknown", lines[2]);         // lo's operstate when up (down: "down")
                Assert.Equal("0", lines[3]);               // no listener of the containers before it
                seen.Add(inside);

                await ListenAsync(container);
                Assert.Equal("1\n", (await container.ExecAsync(["sh", "-c", Listeners])).Stdout); // its own shows: the probe sees listeners
            }
        }
        finally
        {
            foreach (var container in containers)
            {
                await container.DisposeAsync();
            }
        }
    }

    [RootlessOnlyFact]
    public async Task Rootless_WithoutSubordinateRanges_ContainersJoinNamespacesMadeAheadToo()
    {
        // Without ranges the shared user namespace maps the caller alone; the maker works in it all the same.
        using var ids = new NoSubordinateIds();
        await using var engine = new EngineBackend(null, null, null, null, ids.Files);
        Assert.NotNull(engine.SubordinateIdsMissing);
        var pools = engine.UserNetns!;
        Assert.Equal(0, (await engine.RunAsync(Specs.Host("true"))).ExitCode); // starts the maker
        var ready = await ReadyUserNamespacesAsync(pools);
        await using var container = await engine.CreateAsync(Specs.Host("sleep", "60"));
        await container.StartAsync();
        Assert.Equal(1, pools.Served);
        var probe = await container.ExecAsync(["readlink", "/proc/self/ns/net"]);
        Assert.Contains(Inode(probe.Stdout), ready);
    }

    [RootlessOnlyFact]
    public async Task Rootless_DisposingTheEngineEndsTheMakerAndClosesTheReadyNamespaces()
    {
        var engine = new EngineBackend();
        var pools = engine.UserNetns;
        Assert.True(pools is not null, $"rootless with subordinate ranges only (/etc/subuid, /etc/subgid): {engine.SubordinateIdsMissing}");
        Assert.Equal(0, (await engine.RunAsync(Specs.Host("true"))).ExitCode); // starts the maker
        var ready = await ReadyUserNamespacesAsync(pools);
        Assert.Equal(NetnsPool.Size, ready.Count);
        var maker = Assert.Single(Leaks.AgentProcessesOf(Environment.ProcessId, UserNetnsMaker));

        await engine.DisposeAsync();

        Assert.True(await Leaks.AllGoneAsync([maker]), $"maker {maker} outlived its engine");
        Assert.Empty(Leaks.AgentProcessesOf(Environment.ProcessId, UserNetnsMaker));
        Assert.Empty(OpenNamespaces().Intersect(ready));
        Assert.Equal(0, pools.ReadyCount);
    }

    /// <summary>The rootless network namespace maker's name in ps (native/netmaker.c).</summary>
    internal const string UserNetnsMaker = "isotest-netns";

    private static async Task<IContainer> StartListeningAsync(EngineBackend engine)
    {
        var container = await engine.CreateAsync(Specs.Host("sleep", "60"));
        await container.StartAsync();
        await ListenAsync(container);
        return container;
    }

    /// <summary>A socket listening on port 4711 in the container, left running (its output to /dev/null, so the exec ends).</summary>
    private static async Task ListenAsync(IContainer container) =>
        Assert.Equal(0, (await container.ExecAsync(["sh", "-c", "busybox nc -l -p 4711 </dev/null >/dev/null 2>&1 & sleep 0.2"])).ExitCode);

    /// <summary>Waits until the rootless pools are full; returns the namespaces this process holds.</summary>
    private static async Task<IReadOnlyList<string>> ReadyUserNamespacesAsync(UserNetnsPools pools)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (pools.ReadyCount < NetnsPool.Size)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the rootless pool holds {pools.ReadyCount} namespaces after {Patience}");
            await Task.Delay(10);
        }

        return OpenNamespaces();
    }

    [RootOnlyFact]
    public async Task Root_EachContainerJoinsAReadyNamespace_FreshAndNeverReused()
    {
        await using var engine = new EngineBackend();

        // Namespace inodes are recycled once a namespace is gone: keep every container alive to compare.
        var containers = new List<IContainer>();
        try
        {
            var seen = new List<string>();
            for (int i = 0; i < 4; i++)
            {
                var ready = await ReadyNamespacesAsync(engine);
                var container = await engine.CreateAsync(Specs.Host("sleep", "60"));
                containers.Add(container);
                await container.StartAsync();

                var probe = await container.ExecAsync(["sh", "-c", "readlink /proc/self/ns/net; echo $(ls /sys/class/net); cat /sys/class/net/lo/operstate"]);

                var lines = probe.Stdout.Split('\n');
                var inside = Inode(lines[0]);
                Assert.Contains(inside, ready);            // it joined one made ahead of time...
                Assert.DoesNotContain(inside, seen);       // ...that no other container has
                Assert.Equal("lo", lines[1]);              // and it is as fresh as a new one: lo only, up
                Assert.Equal("unknown", lines[2]);         // lo's operstate when up (down: "down")
                seen.Add(inside);
            }
        }
        finally
        {
            foreach (var container in containers)
            {
                await container.DisposeAsync();
            }
        }
    }

    [RootOnlyFact]
    public async Task Root_DisposingTheEngineClosesTheReadyNamespaces()
    {
        var engine = new EngineBackend();

        var ready = await ReadyNamespacesAsync(engine);
        Assert.Equal(NetnsPool.Size, ready.Count);
        var network = (EngineNetwork)await new NetworkBuilder().WithBackend(engine).BuildAsync();
        var onNetwork = await ReadyOnNetworkAsync(network);

        await engine.DisposeAsync();

        Assert.Empty(OpenNamespaces().Intersect(ready.Concat(onNetwork)));
        Assert.Empty(network.ReadyNow);
    }

    [RootOnlyFact]
    public async Task Root_EachMemberJoinsANamespaceReadyOnItsNetwork_FreshAndNeverReused()
    {
        await using var engine = new EngineBackend();
        await using var network = (EngineNetwork)await new NetworkBuilder().WithBackend(engine).BuildAsync();

        var containers = new List<IContainer>();
        try
        {
            var seen = new List<string>();
            var addresses = new List<string>();
            for (int i = 0; i < 4; i++)
            {
                var ready = await ReadyOnNetworkAsync(network);
                var container = await engine.CreateAsync(Specs.Host("sleep", "60") with { Networks = [Network.Join(network)] });
                containers.Add(container);
                await container.StartAsync();

                var probe = await container.ExecAsync(["sh", "-c", "readlink /proc/self/ns/net; echo $(ls /sys/class/net); cat /sys/class/net/eth0/operstate; ip -o -4 addr show eth0 | awk '{print $4}'"]);

                var lines = probe.Stdout.Split('\n');
                var inside = Inode(lines[0]);
                Assert.Contains(inside, ready);            // it joined one made ahead of time on its network...
                Assert.DoesNotContain(inside, seen);       // ...that no other container has
                Assert.Equal("eth0 lo", lines[1]);         // with its interface on the network only
                Assert.Equal("up", lines[2]);              // up, its peer on the bridge up too (else "lowerlayerdown")
                Assert.Contains(lines[3], Enumerable.Range(0, network.Subnet.Capacity).Select(slot => $"{network.Subnet.Member(slot)}/{network.Subnet.PrefixLength}"));
                Assert.DoesNotContain(lines[3], addresses); // an address of its own
                seen.Add(inside);
                addresses.Add(lines[3]);
            }

            // Claimed, they are members like any other: each reaches the others by name.
            var last = containers[^1];
            var names = await last.ExecAsync(["sh", "-c", string.Join("; ", containers.Take(3).Select(c => $"getent hosts {c.Name} | wc -l"))]);
            Assert.Equal(["1", "1", "1"], names.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
        finally
        {
            foreach (var container in containers)
            {
                await container.DisposeAsync();
            }
        }
    }

    [RootOnlyFact]
    public async Task Root_DisposingANetworkClosesItsReadyNamespaces_AndLeavesNoVeth()
    {
        await using var engine = new EngineBackend();
        var network = (EngineNetwork)await new NetworkBuilder().WithBackend(engine).BuildAsync();
        var ready = await ReadyOnNetworkAsync(network);
        var bridgeSide = Inode(new FileInfo($"/proc/self/fd/{network.Namespace.DangerousGetHandle()}").LinkTarget!);
        Assert.Equal(EngineNetworks.ReadyPerNetwork, network.ReadyNow.Count);

        await network.DisposeAsync();

        // Nothing else held them: closed here, the kernel deletes them with the veth pairs and the bridge.
        Assert.Empty(OpenNamespaces().Intersect([.. ready, bridgeSide]));
        Assert.Empty(network.ReadyNow);
    }

    /// <summary>Waits until the engine keeps a network's namespaces ready; returns their inodes.</summary>
    internal static async Task<IReadOnlyList<string>> ReadyOnNetworkAsync(EngineNetwork network)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (network.ReadyNow.Count < EngineNetworks.ReadyPerNetwork)
        {
            Assert.True(DateTime.UtcNow < deadline, $"network {network.Name} holds {network.ReadyNow.Count} ready namespaces after {Patience}");
            await Task.Delay(10);
        }

        return [.. network.ReadyNow.Select(r => Inode(new FileInfo($"/proc/self/fd/{r.Namespace.DangerousGetHandle()}").LinkTarget!))];
    }

    /// <summary>Starts the pool if needed and waits until it is full; returns the namespaces it holds.</summary>
    private static async Task<IReadOnlyList<string>> ReadyNamespacesAsync(EngineBackend engine)
    {
        var pool = engine.Netns!;
        var deadline = DateTime.UtcNow + Patience;
        while (pool.ReadyCount < NetnsPool.Size)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the pool holds {pool.ReadyCount} namespaces after {Patience}");
            await Task.Delay(10);
        }

        return OpenNamespaces();
    }

    /// <summary>The network namespaces other than the host's that this process holds descriptors to ("net:[inode]").</summary>
    private static List<string> OpenNamespaces()
    {
        var host = Inode(File.ResolveLinkTarget("/proc/self/ns/net", false)!.Name);
        return Directory.EnumerateFileSystemEntries("/proc/self/fd")
            .Select(fd => { try { return File.ResolveLinkTarget(fd, false)?.Name; } catch (IOException) { return null; } })
            .Where(target => target is not null && target.StartsWith("net:[", StringComparison.Ordinal))
            .Select(target => Inode(target!))
            .Where(inode => inode != host)
            .ToList();
    }

    private static string Inode(string link) => link.Trim()["net:[".Length..^1];
}
