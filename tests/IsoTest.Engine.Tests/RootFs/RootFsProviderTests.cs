using IsoTest.Engine.RootFs;

namespace IsoTest.Engine.Tests.RootFs;

public sealed class RootFsProviderTests
{
    [Fact]
    public async Task Host_IsTheHostsRootAlone()
    {
        var root = await RootFsProviders.Default.For(RootFileSystem.Host).ResolveAsync(new ContainerSpec { RootFileSystem = RootFileSystem.Host }, CancellationToken.None);

        Assert.True(root.IsHost);
        Assert.Equal(["/"], root.LowerDirectories);
        Assert.Null(root.Config);
    }

    [Fact]
    public async Task Directory_IsItsFullPath()
    {
        var given = RootFileSystem.FromDirectory("/srv/rootfs/../rootfs");

        var root = await RootFsProviders.Default.For(given).ResolveAsync(new ContainerSpec { RootFileSystem = given }, CancellationToken.None);

        Assert.False(root.IsHost);
        Assert.Equal(["/srv/rootfs"], root.LowerDirectories);
    }

    [Fact]
    public void Image_HasNoProviderYet_SaysWhatToUse()
    {
        var e = Assert.Throws<BackendUnavailableException>(() => RootFsProviders.Default.For(RootFileSystem.FromImage("redis:7")));

        Assert.Contains("ISOTEST_BACKEND=docker", e.Message);
    }

    [Fact]
    public void ResolvedRoot_NeedsAbsoluteLowerDirectories()
    {
        Assert.Throws<ArgumentException>(() => new ResolvedRoot(false, []));
        Assert.Throws<ArgumentException>(() => new ResolvedRoot(false, ["relative"]));
    }
}
