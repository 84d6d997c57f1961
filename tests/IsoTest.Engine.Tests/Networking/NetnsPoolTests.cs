using IsoTest.Engine.Networking;
using IsoTest.Engine.Tests.Support;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Networking;

/// <summary>
/// Network namespaces made ahead of time (root only): each container gets a fresh one, never one another
/// container used, and an engine that goes away closes the ones it still holds.
/// </summary>
/// <remarks>Serial: it reads this process's descriptors, which other test classes' engines add to.</remarks>
[Collection(SerialCollection.Name)]
public sealed class NetnsPoolTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [RootlessOnlyFact]
    public async Task Rootless_HasNoPool()
    {
        // Rootless the namespace must belong to the container's own user namespace: the agent makes it.
        await using var engine = new EngineBackend();

        Assert.Null(engine.Netns);
        Assert.Equal(0, (await engine.RunAsync(Specs.Host("true"))).ExitCode);
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
