using System.Text;
using IsoTest.Engine.Images;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.Tests.Images;

/// <summary>
/// Layers whose PAX headers carry binary xattr values (not UTF-8) and file capabilities: the tars are written here byte
/// by byte (TarWriter, like TarReader, only knows text values), unpacked, and the xattrs read back with lgetxattr.
/// </summary>
public sealed class RawXattrTests : IDisposable
{
    private static readonly bool Root = Libc.geteuid() == 0;

    // Not UTF-8: a lone continuation byte, 0xFF, a NUL inside.
    private static readonly byte[] Binary = [0xFF, 0x00, 0x80, 0xC3, 0x28, 0xFE, 0x7F];

    // VFS_CAP_REVISION_2, effective: cap_setuid (bit 7, the byte 0x80) and cap_net_raw (bit 13); 20 bytes as the kernel stores them.
    private static readonly byte[] Capability = [0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];

    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-xattr-").FullName;

    public void Dispose() => ImageStore.RemoveTree(_dir);

    private string Unpack(byte[] tar, UnpackOptions? options = null)
    {
        var blob = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(blob, tar);
        var target = Path.Combine(_dir, "layer-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(target);
        var result = LayerUnpacker.Unpack(blob, target, options ?? UnpackOptions.ForThisProcess);
        Assert.Equal(OciLayout.Digest(tar), result.DiffId);
        return target;
    }

    [Fact]
    public void Unpack_BinaryUserXattr_ByteForByte()
    {
        var tar = new RawTar()
            .Entry("dir/", '5', [], xattrs: [("user.dirbin", Binary)])
            .Entry("dir/file", '0', "data"u8.ToArray(), xattrs: [("user.bin", Binary), ("user.text", "héllo"u8.ToArray())])
            .Entry("plain", '0', "x"u8.ToArray())
            .Tar();

        var t = Unpack(tar);

        Assert.Equal(Binary, FsProbe.XattrBytes(Path.Combine(t, "dir/file"), "user.bin"));
        Assert.Equal("héllo"u8.ToArray(), FsProbe.XattrBytes(Path.Combine(t, "dir/file"), "user.text"));
        Assert.Equal(Binary, FsProbe.XattrBytes(Path.Combine(t, "dir"), "user.dirbin"));
        Assert.Null(FsProbe.XattrBytes(Path.Combine(t, "plain"), "user.bin")); // the next entry's attributes are its own
        Assert.Equal("data", File.ReadAllText(Path.Combine(t, "dir/file")));
    }

    [Fact]
    public void Unpack_LargeEntryBetween_KeepsTheBlocksInStep()
    {
        // Data of odd sizes (padding), a long name (PAX path) and a GNU-style long name record in between.
        var big = new byte[70_001];
        new Random(7).NextBytes(big);
        var tar = new RawTar()
            .Entry("big", '0', big, xattrs: [("user.a", [0x80])])
            .Entry(new string('n', 150), '0', "long"u8.ToArray(), xattrs: [("user.b", [0x81, 0x82])], paxPath: true)
            .Entry("after", '0', [], xattrs: [("user.c", [0xFF])])
            .Tar();

        var t = Unpack(tar);

        Assert.Equal(big, File.ReadAllBytes(Path.Combine(t, "big")));
        Assert.Equal([0x80], FsProbe.XattrBytes(Path.Combine(t, "big"), "user.a"));
        Assert.Equal([0x81, 0x82], FsProbe.XattrBytes(Path.Combine(t, new string('n', 150)), "user.b"));
        Assert.Equal([0xFF], FsProbe.XattrBytes(Path.Combine(t, "after"), "user.c"));
    }

    [Fact]
    public void Unpack_FileCapability_SurvivesTheChown_RootAndRootless()
    {
        var tar = new RawTar()
            .Entry("usr/bin/ping", '0', "binary"u8.ToArray(), uid: 1000, gid: 1000, mode: 0x1ED, xattrs: [("security.capability", Capability)])
            .Tar();

        var t = Unpack(tar);
        var ping = Path.Combine(t, "usr/bin/ping");
        var stored = FsProbe.XattrBytes(ping, "security.capability");

        Assert.Equal("binary", File.ReadAllText(ping));
        if (Root)
        {
            Assert.Equal((1000, 1000), FsProbe.Owner(ping)); // chowned first: chown drops security.capability
            Assert.Equal(Capability, stored);
            Assert.Contains("cap_setuid,cap_net_raw=e", GetCap(ping), StringComparison.Ordinal);
            return;
        }

        // Rootless the owners tool writes it from a user namespace whose 0 is the caller (with subordinate ranges or
        // without): the kernel keeps the capability sets and stores them as v3, rooted at the caller's uid, so they
        // hold in containers that map the caller to 0 and nowhere else.
        Assert.NotNull(stored);
        Assert.Equal(24, stored.Length);
        Assert.Equal(new byte[] { 0x01, 0x00, 0x00, 0x03 }, stored[..4]); // VFS_CAP_REVISION_3 | VFS_CAP_FLAGS_EFFECTIVE
        Assert.Equal(Capability[4..20], stored[4..20]);
        Assert.Equal(Credentials.EffectiveUid, BitConverter.ToUInt32(stored, 20));
    }

    [Fact]
    public void Unpack_FileCapability_UnprivilegedWithoutSubordinateRanges_RootedAtTheCaller()
    {
        // The unprivileged path without ranges, whoever runs it: the tool maps the caller alone as 0 itself.
        var tar = new RawTar()
            .Entry("usr/bin/ping", '0', "binary"u8.ToArray(), mode: 0x1ED, xattrs: [("security.capability", Capability)])
            .Tar();

        var t = Unpack(tar, new UnpackOptions(Privileged: false));
        var stored = FsProbe.XattrBytes(Path.Combine(t, "usr/bin/ping"), "security.capability");

        Assert.NotNull(stored);
        if (Root)
        {
            Assert.Equal(Capability, stored); // rooted at the host's 0, which the kernel stores as v2
            return;
        }

        Assert.Equal(24, stored.Length);
        Assert.Equal(Capability[4..20], stored[4..20]);
        Assert.Equal(Credentials.EffectiveUid, BitConverter.ToUInt32(stored, 20));
    }

    [Fact]
    public void Unpack_FileCapabilityBehindALaterSymlink_NeverReachesTheHost()
    {
        // The capped file's directory is replaced by a symlink to a host directory holding a file of that name: the
        // capability (written at the end rootless) is resolved inside the layer and lands nowhere.
        var outside = Directory.CreateDirectory(Path.Combine(_dir, "outside")).FullName;
        var victim = Path.Combine(outside, "ping");
        File.WriteAllText(victim, "host file");
        var tar = new RawTar()
            .Entry("a/", '5', [])
            .Entry("a/ping", '0', "binary"u8.ToArray(), mode: 0x1ED, xattrs: [("security.capability", Capability)])
            .Entry("a", '2', [], link: outside)
            .Tar();

        var t = Unpack(tar);

        Assert.Equal(outside, new FileInfo(Path.Combine(t, "a")).LinkTarget);
        Assert.Null(FsProbe.XattrBytes(victim, "security.capability"));
        Assert.Equal("host file", File.ReadAllText(victim));
    }

    private static string GetCap(string path)
    {
        using var getcap = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/sbin/getcap", [path]) { RedirectStandardOutput = true })!;
        var said = getcap.StandardOutput.ReadToEnd();
        getcap.WaitForExit();
        return said;
    }

    /// <summary>A ustar archive with PAX extended headers whose values are bytes, written by hand.</summary>
    private sealed class RawTar
    {
        private readonly MemoryStream _out = new();

        public RawTar Entry(string name, char type, byte[] data, (string Key, byte[] Value)[]? xattrs = null, int uid = 0, int gid = 0, int mode = 0x1A4, bool paxPath = false, string link = "")
        {
            var records = new MemoryStream();
            if (paxPath)
            {
                Record(records, "path", Encoding.UTF8.GetBytes(name));
            }

            foreach (var (key, value) in xattrs ?? [])
            {
                Record(records, "SCHILY.xattr." + key, value);
            }

            if (records.Length > 0)
            {
                Block("PaxHeaders/" + (name.Length > 80 ? name[..80] : name), 'x', records.ToArray(), 0, 0, 0x1A4);
            }

            Block(paxPath ? name[..90] : name, type, data, uid, gid, type == '5' ? 0x1ED : mode, link);
            return this;
        }

        public byte[] Tar()
        {
            _out.Write(new byte[1024]);
            return _out.ToArray();
        }

        private static void Record(MemoryStream records, string key, byte[] value)
        {
            var body = 1 + Encoding.UTF8.GetByteCount(key) + 1 + value.Length + 1; // " key=value\n"
            var length = body + 1;
            while (length.ToString(System.Globalization.CultureInfo.InvariantCulture).Length + body != length)
            {
                length++;
            }

            records.Write(Encoding.ASCII.GetBytes(length.ToString(System.Globalization.CultureInfo.InvariantCulture) + " " + key + "="));
            records.Write(value);
            records.WriteByte((byte)'\n');
        }

        private void Block(string name, char type, byte[] data, int uid, int gid, int mode, string link = "")
        {
            var header = new byte[512];
            void Put(int offset, string text) => Encoding.ASCII.GetBytes(text).CopyTo(header, offset);
            void Octal(int offset, int width, long value) => Put(offset, Convert.ToString(value, 8).PadLeft(width - 1, '0') + "\0");
            Encoding.UTF8.GetBytes(name).CopyTo(header, 0);
            Octal(100, 8, mode);
            Octal(108, 8, uid);
            Octal(116, 8, gid);
            Octal(124, 12, data.Length);
            Octal(136, 12, 1_700_000_000);
            header[156] = (byte)type;
            Encoding.UTF8.GetBytes(link).CopyTo(header, 157);
            Put(257, "ustar\0");
            Put(263, "00");
            Put(148, "        ");
            var sum = header.Sum(b => (int)b);
            Put(148, Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ");
            _out.Write(header);
            _out.Write(data);
            _out.Write(new byte[(512 - (data.Length % 512)) % 512]);
        }
    }
}
