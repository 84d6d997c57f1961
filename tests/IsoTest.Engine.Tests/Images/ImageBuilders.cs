using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Images;

public enum Compression
{
    None,
    Gzip,
    Zstd,
}

/// <summary>Builds a layer tar in memory entry by entry, as image builders write them (PAX, ./-less names).</summary>
public sealed class LayerBuilder
{
    private readonly MemoryStream _tar = new();
    private readonly TarWriter _writer;
    private static readonly DateTimeOffset Time = new(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);

    public LayerBuilder(TarEntryFormat format = TarEntryFormat.Pax)
    {
        Format = format;
        _writer = new TarWriter(_tar, format, leaveOpen: true);
    }

    public TarEntryFormat Format { get; }

    public LayerBuilder Dir(string name, int mode = 0x1ED, int uid = 0, int gid = 0) =>
        Add(Entry(TarEntryType.Directory, name, mode, uid, gid));

    public LayerBuilder File(string name, string content, int mode = 0x1A4, int uid = 0, int gid = 0, Dictionary<string, string>? xattrs = null)
    {
        var entry = Entry(TarEntryType.RegularFile, name, mode, uid, gid, xattrs);
        entry.DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content));
        return Add(entry);
    }

    public LayerBuilder Bytes(string name, byte[] content, int mode = 0x1ED)
    {
        var entry = Entry(TarEntryType.RegularFile, name, mode, 0, 0);
        entry.DataStream = new MemoryStream(content);
        return Add(entry);
    }

    public LayerBuilder Symlink(string name, string target, int uid = 0, int gid = 0)
    {
        var entry = Entry(TarEntryType.SymbolicLink, name, 0x1FF, uid, gid);
        entry.LinkName = target;
        return Add(entry);
    }

    /// <summary>A hard link; its header carries the target's mode, as real tar writers put it.</summary>
    public LayerBuilder Hardlink(string name, string target, int mode = 0x1A4)
    {
        var entry = Entry(TarEntryType.HardLink, name, mode, 0, 0);
        entry.LinkName = target;
        return Add(entry);
    }

    public LayerBuilder CharDevice(string name, int major, int minor)
    {
        var entry = (PosixTarEntry)Entry(TarEntryType.CharacterDevice, name, 0x1B6, 0, 0);
        entry.DeviceMajor = major;
        entry.DeviceMinor = minor;
        return Add(entry);
    }

    public LayerBuilder Fifo(string name) => Add(Entry(TarEntryType.Fifo, name, 0x1A4, 0, 0));

    /// <summary>A whiteout: the file <c>.wh.NAME</c> next to what it deletes.</summary>
    public LayerBuilder Whiteout(string path)
    {
        var slash = path.LastIndexOf('/');
        return File(slash < 0 ? ".wh." + path : path[..(slash + 1)] + ".wh." + path[(slash + 1)..], "", 0);
    }

    public LayerBuilder Opaque(string dir) => File(dir.TrimEnd('/') + "/.wh..wh..opq", "", 0);

    public byte[] Tar()
    {
        _writer.Dispose();
        return _tar.ToArray();
    }

    public static byte[] Compress(byte[] tar, Compression compression)
    {
        using var output = new MemoryStream();
        switch (compression)
        {
            case Compression.Gzip:
                using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
                {
                    gz.Write(tar);
                }

                break;
            case Compression.Zstd:
                using (var z = new ZstdSharp.CompressionStream(output, 3, leaveOpen: true))
                {
                    z.Write(tar);
                }

                break;
            default:
                return tar;
        }

        return output.ToArray();
    }

    private TarEntry Entry(TarEntryType type, string name, int mode, int uid, int gid, Dictionary<string, string>? xattrs = null)
    {
        TarEntry entry = Format switch
        {
            TarEntryFormat.Gnu => new GnuTarEntry(type, name),
            TarEntryFormat.Ustar => new UstarTarEntry(type, name),
            _ => xattrs is null ? new PaxTarEntry(type, name) : new PaxTarEntry(type, name, xattrs.ToDictionary(p => "SCHILY.xattr." + p.Key, p => p.Value)),
        };
        entry.Mode = (UnixFileMode)mode;
        entry.Uid = uid;
        entry.Gid = gid;
        entry.ModificationTime = Time;
        return entry;
    }

    private LayerBuilder Add(TarEntry entry)
    {
        _writer.WriteEntry(entry);
        return this;
    }
}

/// <summary>One image: layers (compressed as asked) and the config's runtime defaults.</summary>
public sealed record TestImage(IReadOnlyList<(byte[] Tar, Compression Compression)> Layers, JsonObject? Config = null, string Architecture = "amd64", string Os = "linux")
{
    public static string HostArchitecture => IsoTest.Engine.Images.Platform.Host.Architecture;
}

/// <summary>Writes OCI image layouts (directory: oci-layout, index.json, blobs/sha256) the way image tools do.</summary>
public static class OciLayout
{
    public static string Digest(byte[] content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>Writes <paramref name="image"/> (or several, as one multi-platform index) under <paramref name="dir"/>, tagged <paramref name="tag"/>.</summary>
    public static string Write(string dir, string tag, params TestImage[] images)
    {
        Directory.CreateDirectory(Path.Combine(dir, "blobs", "sha256"));
        System.IO.File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        var manifests = new JsonArray();
        foreach (var image in images)
        {
            var (digest, size) = WriteImage(dir, image);
            manifests.Add(new JsonObject
            {
                ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
                ["digest"] = digest,
                ["size"] = size,
                ["platform"] = new JsonObject { ["architecture"] = image.Architecture, ["os"] = image.Os },
            });
        }

        JsonObject top;
        if (images.Length == 1)
        {
            top = (JsonObject)manifests[0]!.DeepClone();
            top.Remove("platform");
        }
        else
        {
            var indexBytes = Encoding.UTF8.GetBytes(new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = "application/vnd.oci.image.index.v1+json",
                ["manifests"] = manifests,
            }.ToJsonString());
            var indexDigest = Put(dir, indexBytes);
            top = new JsonObject { ["mediaType"] = "application/vnd.oci.image.index.v1+json", ["digest"] = indexDigest, ["size"] = indexBytes.Length };
        }

        top["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = tag };
        System.IO.File.WriteAllText(Path.Combine(dir, "index.json"), new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.index.v1+json",
            ["manifests"] = new JsonArray(top),
        }.ToJsonString());
        return (string)top["digest"]!;
    }

    private static (string Digest, int Size) WriteImage(string dir, TestImage image)
    {
        var layers = new JsonArray();
        var diffIds = new JsonArray();
        foreach (var (tar, compression) in image.Layers)
        {
            var blob = LayerBuilder.Compress(tar, compression);
            layers.Add(new JsonObject
            {
                ["mediaType"] = compression switch
                {
                    Compression.Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                    Compression.Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
                    _ => "application/vnd.oci.image.layer.v1.tar",
                },
                ["digest"] = Put(dir, blob),
                ["size"] = blob.Length,
            });
            diffIds.Add(Digest(tar));
        }

        var config = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = image.Architecture,
            ["os"] = image.Os,
            ["created"] = "2024-05-06T07:08:09Z",
            ["config"] = image.Config?.DeepClone() ?? new JsonObject(),
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = diffIds },
        }.ToJsonString());
        var manifest = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = new JsonObject { ["mediaType"] = "application/vnd.oci.image.config.v1+json", ["digest"] = Put(dir, config), ["size"] = config.Length },
            ["layers"] = layers,
        }.ToJsonString());
        return (Put(dir, manifest), manifest.Length);
    }

    private static string Put(string dir, byte[] content)
    {
        var digest = Digest(content);
        System.IO.File.WriteAllBytes(Path.Combine(dir, "blobs", "sha256", digest["sha256:".Length..]), content);
        return digest;
    }

    /// <summary>Tars a directory (an OCI layout as a single file).</summary>
    public static void TarDirectory(string dir, string tarPath) => TarFile.CreateFromDirectory(dir, tarPath, includeBaseDirectory: false);
}

internal static class JsonExtensions
{
    public static JsonObject Parse(string json) => JsonNode.Parse(json)!.AsObject();

    public static string Pretty(this JsonNode node) => node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
