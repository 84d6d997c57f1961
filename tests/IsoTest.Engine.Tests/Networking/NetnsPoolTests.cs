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

        await engine.DisposeAsync();

        Assert.Empty(OpenNamespaces().Intersect(ready));
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
