using System.Formats.Tar;
using System.Text;
using IsoTest.Engine.Images;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.Tests.Images;

public sealed class LayerUnpackerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-unpack-").FullName;
    private static readonly bool Root = Libc.geteuid() == 0;

    public void Dispose() => ImageStore.RemoveTree(_dir);

    private string Target()
    {
        var target = Path.Combine(_dir, "layer-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(target);
        return target;
    }

    private (string Target, UnpackResult Result) Unpack(LayerBuilder layer, Compression compression = Compression.Gzip)
    {
        var tar = layer.Tar();
        var blob = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(blob, LayerBuilder.Compress(tar, compression));
        var target = Target();
        var result = LayerUnpacker.Unpack(blob, target, UnpackOptions.ForThisProcess);
        Assert.Equal(OciLayout.Digest(tar), result.DiffId);
        return (target, result);
    }

    [Theory]
    [InlineData(Compression.None)]
    [InlineData(Compression.Gzip)]
    [InlineData(Compression.Zstd)]
    public void Unpack_TreeModesLinksAndTimes_AsTheArchiveSays(Compression compression)
    {
        var (t, _) = Unpack(new LayerBuilder()
            .Dir("bin")
            .Bytes("bin/busybox", [0x7f, (byte)'E', (byte)'L', (byte)'F'], 0x1ED)
            .Symlink("bin/sh", "/bin/busybox")
            .Symlink("bin/rel", "busybox")
            .File("usr/local/bin/su", "x", 0xDED) // 06755: setuid and setgid; parent directories implied
            .File("etc/ro", "ro", 0x124)
            .Hardlink("etc/ro-link", "etc/ro", 0x124)
            .Dir("ro-dir", 0x16D) // 0555: children still land
            .File("ro-dir/inside", "i")
            .Fifo("run/fifo"), compression);

        Assert.Equal("/bin/busybox", new FileInfo(Path.Combine(t, "bin/sh")).LinkTarget);
        Assert.Equal("busybox", new FileInfo(Path.Combine(t, "bin/rel")).LinkTarget);
        Assert.Equal((UnixFileMode)0xDED, File.GetUnixFileMode(Path.Combine(t, "usr/local/bin/su")));
        Assert.Equal((UnixFileMode)0x124, File.GetUnixFileMode(Path.Combine(t, "etc/ro")));
        Assert.Equal((UnixFileMode)0x16D, File.GetUnixFileMode(Path.Combine(t, "ro-dir")));
        Assert.Equal("i", File.ReadAllText(Path.Combine(t, "ro-dir/inside")));
        Assert.Equal(FsProbe.Inode(Path.Combine(t, "etc/ro")), FsProbe.Inode(Path.Combine(t, "etc/ro-link")));
        Assert.Equal(2u, FsProbe.Links(Path.Combine(t, "etc/ro")));
        Assert.Equal(new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Utc), File.GetLastWriteTimeUtc(Path.Combine(t, "ro-dir")));
        Assert.Equal(new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Utc), File.GetLastWriteTimeUtc(Path.Combine(t, "etc/ro")));
        Assert.Equal('p', FsProbe.Type(Path.Combine(t, "run/fifo")));
    }

    [Fact]
    public void Unpack_Owners_AreTheArchivesAsRoot_ShiftedIntoTheRangesRootless_ElseTheCallers()
    {
        var (t, _) = Unpack(new LayerBuilder().Dir("home", 0x1ED).File("home/app", "a", 0x9ED, uid: 999, gid: 998).Symlink("home/l", "app", 1234, 4321)
            .Dir("home/secret", 0x1C0, uid: 999, gid: 998).File("home/secret/key", "k", 0x180, uid: 999, gid: 998).File("home/root", "r"));
        var (uid, gid) = FsProbe.Owner(Path.Combine(t, "home/app"));
        var (luid, lgid) = FsProbe.Owner(Path.Combine(t, "home/l"));
        var ranges = Engine.RootFs.SubordinateIds.ForThisProcess().Ids;
        if (Root)
        {
            Assert.Equal((999, 998), (uid, gid));
            Assert.Equal((1234, 4321), (luid, lgid));
        }
        else if (ranges is not null)
        {
            // Container 0 is the caller, container n the range's n-th id: what the containers' user namespaces map.
            Assert.Equal(((int)ranges.UidStart + 998, (int)ranges.GidStart + 997), (uid, gid));
            Assert.Equal(((int)ranges.UidStart + 1233, (int)ranges.GidStart + 4320), (luid, lgid));
            Assert.Equal(((int)Libc.geteuid(), (int)Libc.getegid()), FsProbe.Owner(Path.Combine(t, "home/root")));
        }
        else
        {
            Assert.Equal(((int)Libc.geteuid(), (int)Libc.getegid()), (uid, gid));
        }

        // The chown did not cost the setuid and setgid bits (chown clears them; the mode is set again after it).
        Assert.Equal(0x9ED, (int)File.GetUnixFileMode(Path.Combine(t, "home/app")));

        // A 0700 directory of another owner is not the caller's to enter; removing the tree takes it back first.
        ImageStore.RemoveTree(t);
        Assert.False(Directory.Exists(t));
    }

    [Fact]
    public void Unpack_LongNames_PaxAndGnu()
    {
        var longName = string.Join('/', Enumerable.Range(0, 12).Select(i => $"directory-number-{i:00}")) + "/file.txt";
        Assert.True(longName.Length > 200);
        var longTarget = "/" + longName;
        foreach (var format in new[] { TarEntryFormat.Pax, TarEntryFormat.Gnu })
        {
            var (t, _) = Unpack(new LayerBuilder(format).File(longName, "deep").Symlink("link-" + new string('x', 120), longTarget));
            Assert.Equal("deep", File.ReadAllText(Path.Combine(t, longName)));
            Assert.Equal(longTarget, new FileInfo(Path.Combine(t, "link-" + new string('x', 120))).LinkTarget);
        }
    }

    [Fact]
    public void Unpack_WhiteoutsAndOpaqueDirs_InOverlayForm()
    {
        var (t, _) = Unpack(new LayerBuilder()
            .Whiteout("etc/removed")
            .Opaque("data")
            .File("data/kept", "new"));

        Assert.Equal('c', FsProbe.Type(Path.Combine(t, "etc/removed")));
        Assert.Equal((0, 0), FsProbe.Device(Path.Combine(t, "etc/removed")));
        Assert.False(File.Exists(Path.Combine(t, "etc/.wh.removed")));
        Assert.False(File.Exists(Path.Combine(t, "data/.wh..wh..opq")));
        Assert.Equal("new", File.ReadAllText(Path.Combine(t, "data/kept")));
        Assert.Equal("y", FsProbe.Xattr(Path.Combine(t, "data"), Root ? "trusted.overlay.opaque" : "user.overlay.opaque"));
    }

    [Fact]
    public void Unpack_Xattrs_KeptButOverlaysOwnDropped()
    {
        var (t, _) = Unpack(new LayerBuilder().File("f", "x", xattrs: new() { ["user.note"] = "hello", ["user.overlay.redirect"] = "/etc", ["trusted.overlay.opaque"] = "y" }));
        Assert.Equal("hello", FsProbe.Xattr(Path.Combine(t, "f"), "user.note"));
        Assert.Null(FsProbe.Xattr(Path.Combine(t, "f"), "user.overlay.redirect"));
        Assert.Null(FsProbe.Xattr(Path.Combine(t, "f"), "trusted.overlay.opaque"));
    }

    [Fact]
    public void Unpack_Devices_MadeAsRoot_SkippedRootless()
    {
        var (t, result) = Unpack(new LayerBuilder().Dir("dev").CharDevice("dev/null", 1, 3));
        if (Root)
        {
            Assert.Equal('c', FsProbe.Type(Path.Combine(t, "dev/null")));
            Assert.Equal((1, 3), FsProbe.Device(Path.Combine(t, "dev/null")));
            Assert.Equal(0, result.SkippedDevices);
        }
        else
        {
            Assert.False(Path.Exists(Path.Combine(t, "dev/null")));
            Assert.Equal(1, result.SkippedDevices);
        }
    }

    [Fact]
    public void Unpack_LaterEntriesReplaceEarlier()
    {
        var (t, _) = Unpack(new LayerBuilder().Dir("x").File("x/a", "1").File("x", "file now").Symlink("y", "/nowhere").File("y", "file"));
        Assert.Equal("file now", File.ReadAllText(Path.Combine(t, "x")));
        Assert.Equal("file", File.ReadAllText(Path.Combine(t, "y")));
        Assert.Null(new FileInfo(Path.Combine(t, "y")).LinkTarget);
    }

    // --- malicious layers: nothing is written outside the layer root

    [Theory]
    [InlineData("../escaped")]
    [InlineData("a/../../escaped")]
    [InlineData("../.wh.escaped")]
    public void Unpack_TraversalNames_AreRefused(string name)
    {
        var layer = name.Contains(".wh.", StringComparison.Ordinal) ? new LayerBuilder().File(name, "") : new LayerBuilder().File(name, "pwned");
        var e = Assert.Throws<LayerFormatException>(() => Unpack(layer));
        Assert.Contains("climbs out", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "escaped")));
    }

    [Fact]
    public void Unpack_AbsoluteName_StaysInside()
    {
        var (t, _) = Unpack(new LayerBuilder().File("/abs/file", "in"));
        Assert.Equal("in", File.ReadAllText(Path.Combine(t, "abs/file")));
    }

    [Fact]
    public void Unpack_WriteThroughSymlinkToHost_IsContainedInTheLayer()
    {
        var outside = Path.Combine(_dir, "host-dir");
        Directory.CreateDirectory(outside);
        var (t, _) = Unpack(new LayerBuilder()
            .Dir(outside.TrimStart('/'))            // the same path inside the layer
            .Symlink("evil", outside)               // absolute: resolves inside the root
            .File("evil/pwned", "x")
            .Symlink("up", "../../../../../../..")  // relative, climbing: stops at the root
            .File("up" + outside + "/pwned2", "y")
            .Whiteout("evil/gone"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
        Assert.Equal("x", File.ReadAllText(Path.Combine(t, outside.TrimStart('/'), "pwned")));
        Assert.Equal("y", File.ReadAllText(Path.Combine(t, outside.TrimStart('/'), "pwned2")));
        Assert.Equal('c', FsProbe.Type(Path.Combine(t, outside.TrimStart('/'), "gone")));
    }

    [Fact]
    public void Unpack_WriteThroughSymlinkToNothingInTheLayer_IsRefused()
    {
        var outside = Path.Combine(_dir, "host-dir2");
        Directory.CreateDirectory(outside);
        var e = Assert.Throws<LayerFormatException>(() => Unpack(new LayerBuilder().Symlink("evil", outside).File("evil/pwned", "x")));
        Assert.Contains("not a directory inside the layer", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
    }

    [Fact]
    public void Unpack_HardlinkOutOfTheLayer_IsRefused()
    {
        var secret = Path.Combine(_dir, "secret");
        File.WriteAllText(secret, "host secret");
        Assert.Throws<LayerFormatException>(() => Unpack(new LayerBuilder().Hardlink("stolen", "../secret")));
        var e = Assert.Throws<LayerFormatException>(() => Unpack(new LayerBuilder().Symlink("s", _dir).Hardlink("stolen", "s/secret")));
        Assert.Contains("does not contain", e.Message, StringComparison.Ordinal);
        Assert.Equal(1u, FsProbe.Links(secret));
        var abs = Assert.Throws<LayerFormatException>(() => Unpack(new LayerBuilder().Hardlink("stolen", secret)));
        Assert.Contains("does not contain", abs.Message, StringComparison.Ordinal);
        Assert.Equal(1u, FsProbe.Links(secret));
    }

    [Fact]
    public void Unpack_SymlinkReplacedParent_DoesNotRedirectLaterFiles()
    {
        // A directory replaced by a symlink to the host, then a file "under" it: lands inside the layer.
        var outside = Path.Combine(_dir, "host-etc");
        Directory.CreateDirectory(outside);
        var (t, _) = Unpack(new LayerBuilder().Dir(outside.TrimStart('/')).Dir("etc").File("etc/a", "1").Symlink("etc", outside).File("etc/passwd", "root::0:0"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
        Assert.True(File.Exists(Path.Combine(t, outside.TrimStart('/'), "passwd")));
    }

    [Fact]
    public void Unpack_TruncatedOrGarbage_IsAFormatError()
    {
        var tar = new LayerBuilder().File("big", new string('x', 100_000)).Tar();
        var gz = LayerBuilder.Compress(tar, Compression.Gzip);
        var cut = Path.Combine(_dir, "cut");
        File.WriteAllBytes(cut, gz[..(gz.Length / 2)]);
        Assert.Throws<LayerFormatException>(() => LayerUnpacker.Unpack(cut, Target(), UnpackOptions.ForThisProcess));
        var garbage = Path.Combine(_dir, "garbage");
        File.WriteAllBytes(garbage, Encoding.UTF8.GetBytes(new string('z', 2048)));
        Assert.Throws<LayerFormatException>(() => LayerUnpacker.Unpack(garbage, Target(), UnpackOptions.ForThisProcess));
    }
}
