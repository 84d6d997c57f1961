using IsoTest.Engine.RootFs;

namespace IsoTest.Engine.Tests.RootFs;

/// <summary>
/// The rootless host root's plan (issue 9, issue 15): which host directories hold mounts below them, read from the
/// mount table once per engine, so the agent mirrors those without trying the overlay the kernel refuses there.
/// </summary>
public sealed class HostMountPlanTests
{
    private const string MountInfo = """
        22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
        23 22 0:5 / /proc rw,nosuid - proc proc rw
        24 22 0:6 / /sys rw - sysfs sysfs rw
        25 24 0:7 / /sys/fs/cgroup rw - tmpfs tmpfs rw
        26 22 0:8 / /dev rw - devtmpfs devtmpfs rw
        27 22 0:9 / /run rw - tmpfs tmpfs rw
        28 27 0:10 / /run/docker/netns/default rw - nsfs nsfs rw
        29 22 254:0 /var/lib/docker /var/lib/docker rw - ext4 /dev/vda rw
        30 22 0:11 / /mnt/a\040b/c rw - tmpfs tmpfs rw
        31 22 0:12 / /tmp rw - tmpfs tmpfs rw
        32 31 0:13 / /tmp/x/y rw - tmpfs tmpfs rw
        """;

    [Fact]
    public void FromMountInfo_ListsEveryAncestorOfAMountPoint_ShallowFirst_ButNotTheMirrorsOwnTopLevel()
    {
        var plan = HostMountPlan.FromMountInfo(MountInfo);

        // /proc, /sys, /dev, /run and /tmp are the container's own: what is mounted there never matters to the mirror.
        // /var/lib/docker itself is a mount, not a holder: an overlay of it works. The escaped space is unescaped.
        Assert.Equal(["/mnt", "/var", "/mnt/a b", "/var/lib"], plan);
    }

    [Fact]
    public void FromMountInfo_OnlyTheRoot_PlansNothing() =>
        Assert.Empty(HostMountPlan.FromMountInfo("22 1 254:0 / / rw - ext4 /dev/vda rw\n"));

    [Fact]
    public void FromMountInfo_ManyHolders_KeepsTheAgentsLimit()
    {
        var lines = Enumerable.Range(0, 300).Select(i => $"{100 + i} 22 0:{i} / /srv/d{i}/m rw - tmpfs tmpfs rw");
        var plan = HostMountPlan.FromMountInfo(string.Join('\n', lines));

        Assert.Equal(HostMountPlan.MaxDirectories, plan.Count);
        Assert.Equal("/srv", plan[0]); // the shallowest, which every start meets, are kept
    }

    [Theory]
    [InlineData(@"/a\040b", "/a b")]
    [InlineData(@"/tab\011x", "/tab\tx")]
    [InlineData(@"/back\134slash", @"/back\slash")]
    [InlineData(@"/not\08", @"/not\08")]
    [InlineData("/plain", "/plain")]
    public void Unescape_DecodesTheKernelsOctalEscapes(string field, string expected) =>
        Assert.Equal(expected, HostMountPlan.Unescape(field));

    [Fact]
    public void ForThisProcess_NamesTheAncestorsOfThisMachinesMounts()
    {
        // Mounts come and go while other work runs (dockerd's overlays): compare against a table read on both sides of the
        // plan that did not change meanwhile.
        IReadOnlyList<string> plan;
        string before, after;
        var tries = 0;
        do
        {
            before = File.ReadAllText(HostMountPlan.MountInfoPath);
            plan = HostMountPlan.ForThisProcess();
            after = File.ReadAllText(HostMountPlan.MountInfoPath);
        }
        while (before != after && ++tries < 20);

        Assert.Equal(HostMountPlan.FromMountInfo(before), plan);
        // Each exists, unless this user may not look into an ancestor (rootless: /var/lib/docker is root's, 0710).
        Assert.All(plan, dir => Assert.True(Directory.Exists(dir) || HiddenFromThisUser(dir), $"{dir} is planned but does not exist"));
    }

    private static bool HiddenFromThisUser(string dir)
    {
        for (var parent = Path.GetDirectoryName(dir); parent is not null && parent != "/"; parent = Path.GetDirectoryName(parent))
        {
            try
            {
                _ = Directory.GetFileSystemEntries(parent);
            }
            catch (UnauthorizedAccessException)
            {
                return true;
            }
        }

        return false;
    }
}
