using System.Runtime.InteropServices;
using IsoTest.Engine.Native;
using IsoTest.Engine.RootFs;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.RootFs;

/// <summary>
/// Issue 9, the rootless host-root start: which entries of the mirror's split directories the mirror may bind
/// read-only because no id of a container could write anything in them (HostReadOnlyTrees), walked on real trees the
/// test makes. The files are the test's own: the ids the container "maps" are chosen per case, so one tree is
/// writable for one set of ids and read-only for another, as root and rootless alike.
/// </summary>
public sealed partial class HostReadOnlyTreesTests : IDisposable
{
    private const uint Stranger = 4_242_424; // an id no file here has

    private readonly string _holder = Path.Combine(Path.GetTempPath(), $"isotest-rotree-{Guid.NewGuid():N}");

    public HostReadOnlyTreesTests() => Directory.CreateDirectory(_holder);

    public void Dispose()
    {
        foreach (var dir in Directory.GetDirectories(_holder, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 }))
        {
            File.SetUnixFileMode(dir, Mode("755")); // the unlistable cases
        }

        Directory.Delete(_holder, recursive: true);
    }

    private static UnixFileMode Mode(string octal) => (UnixFileMode)Convert.ToInt32(octal, 8);

    private static HostWriters Strangers(params uint[] groups) => new(Stranger, Stranger, groups.ToHashSet(), null);

    private static uint MyGid => Credentials.EffectiveGid; // the group of every file the test makes

    /// <summary>A directory with a file and a subdirectory holding a file, all 0755/0644: root's /var/lib/dpkg in small.</summary>
    private string Tree(string name)
    {
        var root = Path.Combine(_holder, name);
        Directory.CreateDirectory(Path.Combine(root, "sub"));
        File.WriteAllText(Path.Combine(root, "status"), "x");
        File.WriteAllText(Path.Combine(root, "sub", "list"), "x");
        foreach (var path in new[] { root, Path.Combine(root, "sub") })
        {
            File.SetUnixFileMode(path, Mode("755"));
        }

        foreach (var path in new[] { Path.Combine(root, "status"), Path.Combine(root, "sub", "list") })
        {
            File.SetUnixFileMode(path, Mode("644"));
        }

        return root;
    }

    private IReadOnlyList<string> Find(HostWriters writers, int perTree = HostReadOnlyTrees.MaxEntriesPerTree) =>
        HostReadOnlyTrees.Find([_holder], writers, perTree);

    [Fact]
    public void ATreeOwnedByIdsTheContainerDoesNotMap_IsReadOnly_OneItMapsIsNot()
    {
        var tree = Tree("dpkg");

        Assert.Equal([tree], Find(Strangers()));
        // The owner mapped (the container's root, or one of its subordinate ids): it may write its files.
        Assert.Empty(Find(new HostWriters(PathStatus.EffectiveUid, Stranger, new HashSet<uint>(), null)));
        var mine = PathStatus.EffectiveUid;
        Assert.Empty(Find(new HostWriters(Stranger, Stranger, new HashSet<uint>(), new SubordinateIds(mine, 1, Stranger, 1, "/x", "/y"))));
    }

    [Fact]
    public void OneFileDeepInside_WritableByOthers_KeepsTheWholeTreeAnOverlay()
    {
        var tree = Tree("cache");
        File.SetUnixFileMode(Path.Combine(tree, "sub", "list"), Mode("646"));
        var other = Tree("log");

        Assert.Equal([other], Find(Strangers()));
    }

    [Fact]
    public void GroupWrite_CountsOnlyForAGroupTheContainersIdsHold()
    {
        var tree = Tree("mail");
        File.SetUnixFileMode(Path.Combine(tree, "sub"), Mode("775")); // group-writable directory, the file's group

        Assert.Equal([tree], Find(Strangers()));           // a group no container id holds: as read-only as before
        Assert.Empty(Find(Strangers(MyGid)));              // a supplementary group of the caller's, kept without ranges
        Assert.Empty(Find(new HostWriters(Stranger, MyGid, new HashSet<uint>(), null))); // the container's own group
    }

    [Theory]
    [InlineData(Stranger, 6, 6, false)] // user:STRANGER:rw- mask::rw-: the container's id may write through the ACL
    [InlineData(Stranger, 6, 4, true)]  // the same, mask::r--: the mask takes the write away
    [InlineData(Stranger + 1, 6, 6, true)] // a named user the container does not map
    [InlineData(Stranger, 5, 5, true)]  // r-x only (systemd's group:adm:r-x on /var/log/journal, here for a user)
    public void AnAccessAcl_GrantsWhatTheModeDoesNotShow_OnlyAWriteForAMappedIdWithinTheMaskCounts(uint named, ushort perm, ushort mask, bool readOnly)
    {
        var tree = Tree("journal");
        var other = Tree("plain");
        var file = Path.Combine(tree, "sub", "list");
        // user::rw- user:NAMED:PERM group::r-- mask::MASK other::r--, in the kernel's xattr form (version 2, then tag, perm, id)
        var acl = new List<byte> { 2, 0, 0, 0 };
        foreach (var (tag, bits, id) in new (ushort, ushort, uint)[] { (0x01, 6, uint.MaxValue), (0x02, perm, named), (0x04, 4, uint.MaxValue), (0x10, mask, uint.MaxValue), (0x20, 4, uint.MaxValue) })
        {
            acl.AddRange(BitConverter.GetBytes(tag));
            acl.AddRange(BitConverter.GetBytes(bits));
            acl.AddRange(BitConverter.GetBytes(id));
        }

        var bytes = acl.ToArray();
        Assert.True(setxattr(file, "system.posix_acl_access", bytes, (nuint)bytes.Length, 0) == 0, $"setxattr: errno {Marshal.GetLastPInvokeError()}");
        Assert.Equal(bytes, PathStatus.AccessAcl(file)); // kept as written: an extended ACL, not folded into the mode

        Assert.Equal(readOnly ? [tree, other] : [other], Find(Strangers()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AnAccessAclItCannotRead_IsTakenAsGrantingWrite()
    {
        var writers = Strangers();
        Assert.True(writers.MayWrite([]));
        Assert.True(writers.MayWrite([3, 0, 0, 0]));             // another version
        Assert.True(writers.MayWrite([2, 0, 0, 0, 0x01, 0, 6])); // cut short
        Assert.True(writers.MayWrite([2, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0])); // a tag it does not know
        Assert.False(writers.MayWrite([2, 0, 0, 0, 0x01, 0, 6, 0, 255, 255, 255, 255])); // user::rw- alone: the mode's
    }

    [Fact]
    public void OnlyDirectoriesThatAreNotHoldersThemselves_AndNotPastTheWalksBudget()
    {
        var small = Tree("small");
        var big = Tree("big");
        for (int i = 0; i < 10; i++)
        {
            File.WriteAllText(Path.Combine(big, $"f{i}"), "");
        }

        var holder = Tree("lib");                              // a holder itself (mounts below it): mirrored, never bound
        File.WriteAllText(Path.Combine(_holder, "shells.state"), "x"); // a file: the mirror binds files anyway
        File.CreateSymbolicLink(Path.Combine(_holder, "app-info"), small);

        Assert.Equal([small, Path.Combine(holder, "sub")], HostReadOnlyTrees.Find([_holder, holder], Strangers(), maxEntriesPerTree: 8));
        Assert.Equal([big, small, Path.Combine(holder, "sub")], HostReadOnlyTrees.Find([_holder, holder], Strangers()));
    }

    [RootlessOnlyFact]
    public void AnUnlistableDirectory_IsReadOnlyUnlessTheUserMayStillEnterIt()
    {
        // Unlistable and unenterable: nothing in it is reachable through an overlay either. Enterable (--x): entries
        // may be reached by name and the walk cannot see them, so it cannot show the tree read-only.
        var shut = Tree("private");
        File.SetUnixFileMode(Path.Combine(shut, "sub"), UnixFileMode.None);
        var searchable = Tree("polkit");
        File.SetUnixFileMode(Path.Combine(searchable, "sub"), UnixFileMode.UserExecute);

        Assert.Equal([shut], Find(Strangers()));
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setxattr(string path, string name, byte[] value, nuint size, int flags);
}
