using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.Images;

/// <summary>How a layer is written: as root (owners, devices, trusted.* xattrs) or as an unprivileged user.</summary>
/// <param name="Privileged">Root: owners are set, device nodes made, opaque dirs marked with trusted.overlay.opaque.</param>
internal sealed record UnpackOptions(bool Privileged)
{
    private static readonly Lazy<UnpackOptions> s_thisProcess = new(() => new(Credentials.IsRoot) { Owners = LayerOwners.ForThisProcess });

    public static UnpackOptions ForThisProcess => s_thisProcess.Value;

    /// <summary>Unprivileged with subordinate ranges: gives the files the tar's owners under the ranges; null: every file stays the caller's.</summary>
    public LayerOwners? Owners { get; init; }

    /// <summary>Device nodes are made (root on the host); root of a user namespace may not (mknod needs the host's CAP_MKNOD): they are skipped.</summary>
    public bool Devices { get; init; } = Privileged;

    /// <summary>Privileged: the owner a tar's uid and gid become (null: themselves), for a writer whose ids differ from the archive's.</summary>
    public Func<int, int, (int Uid, int Gid)>? MapOwner { get; init; }

    /// <summary>The xattr namespace overlayfs reads: trusted.* as root, user.* when mounted with userxattr (rootless).</summary>
    public string OverlayXattrPrefix => Privileged ? "trusted.overlay." : "user.overlay.";
}

/// <summary>What unpacking a layer found.</summary>
/// <param name="DiffId">sha256 of the uncompressed tar (the config's rootfs.diff_ids entry).</param>
/// <param name="Size">Bytes of the uncompressed tar.</param>
/// <param name="SkippedDevices">Device nodes not made (rootless, as rootless Docker does).</param>
internal sealed record UnpackResult(string DiffId, long Size, int SkippedDevices);

/// <summary>
/// Unpacks one layer (plain, gzip or zstd tar) into an empty directory in overlayfs form: whiteouts
/// become 0:0 character devices, opaque markers an overlay.opaque xattr. Every path goes through
/// <see cref="LayerTree"/>, so nothing resolves outside the layer root; entries whose names climb out
/// (<c>../</c>) are refused. Not <c>TarFile.ExtractToDirectory</c>: it refuses absolute symlink
/// targets (<c>/bin/busybox</c>), which every image has, and knows nothing of whiteouts.
/// </summary>
internal static class LayerUnpacker
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueMarker = ".wh..wh..opq";

    public static UnpackResult Unpack(string archivePath, string targetDirectory, UnpackOptions options, CancellationToken cancellationToken = default)
    {
        using var file = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var decompressed = Decompress(file);
        using var hashing = new HashingReadStream(decompressed);
        using var tree = LayerTree.Open(targetDirectory);
        var skippedDevices = Extract(hashing, tree, "", options, layer: true, cancellationToken);

        // The tar ends at two zero blocks; the digest covers every byte of the stream.
        hashing.CopyTo(Stream.Null);
        return new UnpackResult("sha256:" + Convert.ToHexStringLower(hashing.Hash()), hashing.Length, skippedDevices);
    }

    /// <summary>
    /// Writes the tar's entries into <paramref name="tree"/> under <paramref name="directory"/> (relative to the
    /// tree's root, "" for the root): as a layer (<paramref name="layer"/>: whiteouts and opaque markers in
    /// overlayfs form) or as plain files (<c>docker cp</c>, where a <c>.wh.</c> name is just a name). Entry names
    /// and hard link targets may not climb above <paramref name="directory"/>. Returns the device nodes skipped.
    /// </summary>
    /// <exception cref="LayerFormatException">The archive is malformed, climbs out, or the tree refused an entry.</exception>
    internal static int Extract(Stream tar, LayerTree tree, string directory, UnpackOptions options, bool layer, CancellationToken cancellationToken)
    {
        var directories = new Dictionary<string, (int Mode, DateTimeOffset Modified)>(StringComparer.Ordinal);
        var owners = new Dictionary<string, LayerOwner>(StringComparer.Ordinal);
        var capabilities = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var skippedDevices = 0;
        string Under(string path) => directory.Length == 0 ? path : path.Length == 0 ? directory : directory + "/" + path;
        try
        {
            using var raw = new RawPaxAttributes(tar);
            using var reader = new TarReader(raw, leaveOpen: true);
            while (reader.GetNextEntry(copyData: false) is { } entry)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (entry.EntryType is TarEntryType.GlobalExtendedAttributes)
                {
                    continue;
                }

                var path = Clean(entry.Name);
                if (path.Length == 0)
                {
                    continue; // "./": the root itself, which exists already
                }

                var name = path[(path.LastIndexOf('/') + 1)..];
                if (layer && name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
                {
                    Whiteout(tree, path, name, options);
                    continue;
                }

                if (!Write(tree, entry, Under(path), entry.EntryType == TarEntryType.HardLink ? Under(Clean(entry.LinkName)) : null, options, directories, owners, capabilities, raw.Current))
                {
                    skippedDevices++;
                }
            }

            // Modes and mtimes of directories last, deepest first: writing a child changes its parent's
            // mtime, and a read-only directory (0555) would refuse its own children to an unprivileged
            // unpack. The last entry for a path wins; one replaced by a non-directory is skipped.
            foreach (var (path, (mode, modified)) in directories.OrderByDescending(d => d.Key.Length))
            {
                if (tree.Kind(path) == TreeNodeKind.Directory)
                {
                    tree.Chmod(path, mode);
                    tree.SetTimes(path, modified);
                }
            }

            // Last: files owned by subordinate ids are no longer the caller's to write; then an image layer's
            // file capabilities, which the chown would clear. (A rootless copy into a running container is
            // privileged in the container's user namespace: it sets both as it goes, as root does.)
            options.Owners?.Own(tree.Path, owners.Values);
            if (!options.Privileged && layer)
            {
                LayerOwners.SetCapabilities(options.Owners, tree.Path, capabilities);
            }
        }
        catch (InvalidDataException e)
        {
            throw new LayerFormatException($"not a valid tar archive: {e.Message}", e);
        }
        catch (EndOfStreamException e)
        {
            throw new LayerFormatException("the archive ends in the middle of an entry (truncated)", e);
        }
        catch (FormatException e)
        {
            throw new LayerFormatException($"not a valid tar archive: {e.Message}", e);
        }
        catch (ZstdSharp.ZstdException e)
        {
            throw new LayerFormatException($"the zstd stream is corrupt: {e.Message}", e);
        }
        catch (LayerTreeException e)
        {
            throw new LayerFormatException(e.Escapes ? $"an entry leaves the layer root: {e.Message}" : e.Message, e) { ReadOnly = e.ReadOnly, Denied = e.Denied };
        }

        return skippedDevices;
    }

    /// <summary>
    /// The entry's path relative to the layer root. <c>./</c> and leading slashes go (tar's usual forms);
    /// a <c>..</c> that would climb above the root is refused: no real image has one, and containing it
    /// silently would hide a malicious layer.
    /// </summary>
    internal static string Clean(string name)
    {
        var parts = new List<string>();
        foreach (var part in name.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count == 0)
                {
                    throw new LayerFormatException($"entry '{name}' climbs out of the layer root (..)");
                }

                parts.RemoveAt(parts.Count - 1);
                continue;
            }

            if (part.Contains('\0', StringComparison.Ordinal))
            {
                throw new LayerFormatException($"entry '{name}' has a NUL in its name");
            }

            parts.Add(part);
        }

        return string.Join('/', parts);
    }

    private static void Whiteout(LayerTree tree, string path, string name, UnpackOptions options)
    {
        var slash = path.LastIndexOf('/');
        var parent = slash < 0 ? "" : path[..slash];
        if (name == OpaqueMarker)
        {
            // The directory hides what lower layers have there; what this layer writes into it stays.
            if (parent.Length == 0)
            {
                throw new LayerFormatException("an opaque marker at the layer root (/.wh..wh..opq) would hide every lower layer");
            }

            tree.MakeDirectories(parent);
            if (!tree.TrySetXattr(parent, options.OverlayXattrPrefix + "opaque", "y"u8))
            {
                throw new LayerFormatException($"cannot mark '{parent}' opaque ({options.OverlayXattrPrefix}opaque): the store's filesystem must support extended attributes");
            }

            return;
        }

        if (name.StartsWith(WhiteoutPrefix + WhiteoutPrefix, StringComparison.Ordinal))
        {
            return; // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): no meaning on overlayfs
        }

        var target = name[WhiteoutPrefix.Length..];
        if (target is "" or "." or "..")
        {
            throw new LayerFormatException($"whiteout '{path}' names no file");
        }

        var hidden = parent.Length == 0 ? target : parent + "/" + target;
        tree.MakeParents(hidden);
        tree.Remove(hidden);
        tree.MakeNode(hidden, NodeKind.CharacterDevice, 0, 0, 0);
    }

    /// <summary>Writes one entry; false when it is a device node this user may not make.</summary>
    private static bool Write(LayerTree tree, TarEntry entry, string path, string? linkTarget, UnpackOptions options, Dictionary<string, (int, DateTimeOffset)> directories, Dictionary<string, LayerOwner> owners, Dictionary<string, byte[]> capabilities, IReadOnlyDictionary<string, byte[]> rawXattrs)
    {
        // The last entry for a path says its owner and capabilities (tar semantics), whichever kind it is.
        owners.Remove(path);
        capabilities.Remove(path);
        if (options.Owners is not null && !LayerOwners.IsCaller(entry.Uid, entry.Gid) && entry.EntryType is not (TarEntryType.CharacterDevice or TarEntryType.BlockDevice))
        {
            owners[path] = new LayerOwner(path, entry.Uid, entry.Gid, entry.EntryType == TarEntryType.SymbolicLink ? null : (int)entry.Mode & 0xFFF);
        }

        var mode = (int)entry.Mode & 0xFFF; // UnixFileMode carries setuid (04000), setgid, sticky too
        tree.MakeParents(path);
        var existing = tree.Kind(path);
        if (entry.EntryType == TarEntryType.Directory)
        {
            if (existing != TreeNodeKind.Directory)
            {
                tree.Remove(path);
                tree.MakeDirectory(path);
            }

            Own(tree, entry, path, options);
            SetXattrs(tree, entry, path, options, capabilities, rawXattrs);
            directories[path] = (mode, entry.ModificationTime);
            return true;
        }

        // A later entry replaces an earlier one (tar semantics), whatever kind either is.
        if (existing != TreeNodeKind.Missing)
        {
            tree.Remove(path);
        }

        switch (entry.EntryType)
        {
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                using (var output = tree.CreateFile(path))
                {
                    entry.DataStream?.CopyTo(output);
                }

                break;
            case TarEntryType.SymbolicLink:
                // The target is stored as written (often absolute); it is only ever resolved inside the container.
                tree.Symlink(path, entry.LinkName);
                Own(tree, entry, path, options);
                tree.SetTimes(path, entry.ModificationTime);
                return true;
            case TarEntryType.HardLink:
                // The link shares the target's inode; its header's owner and mode then apply to both, as
                // Docker's extractor does (real tars repeat the target's).
                tree.Hardlink(path, linkTarget!);
                break;
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice:
                if (!options.Devices)
                {
                    return false;
                }

                tree.MakeNode(path, entry.EntryType == TarEntryType.CharacterDevice ? NodeKind.CharacterDevice : NodeKind.BlockDevice, mode,
                    entry is PosixTarEntry p ? p.DeviceMajor : 0, entry is PosixTarEntry q ? q.DeviceMinor : 0);
                break;
            case TarEntryType.Fifo:
                tree.MakeNode(path, NodeKind.Fifo, mode, 0, 0);
                break;
            default:
                throw new LayerFormatException($"entry '{entry.Name}' is of a kind layers do not hold ({entry.EntryType})");
        }

        // Owner before mode: chown clears setuid and setgid.
        Own(tree, entry, path, options);
        tree.Chmod(path, mode);
        SetXattrs(tree, entry, path, options, capabilities, rawXattrs);
        tree.SetTimes(path, entry.ModificationTime);
        return true;
    }

    private static void Own(LayerTree tree, TarEntry entry, string path, UnpackOptions options)
    {
        // Unprivileged, every file stays the caller's here: with subordinate ranges options.Owners gives them
        // their owners at the end; without, the user namespace maps the caller to the container's user.
        if (!options.Privileged)
        {
            return;
        }

        var (uid, gid) = options.MapOwner?.Invoke(entry.Uid, entry.Gid) ?? (entry.Uid, entry.Gid);
        if (!tree.TryChown(path, uid, gid))
        {
            throw new LayerFormatException($"cannot give '{path}' owner {uid}:{gid}");
        }
    }

    /// <summary>
    /// The entry's xattrs, after its owner (chown clears security.capability) and its data. Values come from
    /// <paramref name="rawXattrs"/> (the archive's bytes), as TarReader's strings lose binary values.
    /// </summary>
    private static void SetXattrs(LayerTree tree, TarEntry entry, string path, UnpackOptions options, Dictionary<string, byte[]> capabilities, IReadOnlyDictionary<string, byte[]> rawXattrs)
    {
        if (entry is not PaxTarEntry pax)
        {
            return;
        }

        foreach (var (key, value) in pax.ExtendedAttributes)
        {
            byte[] bytes;
            string attribute;
            if (key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
            {
                attribute = key["SCHILY.xattr.".Length..];
                bytes = rawXattrs.TryGetValue(key, out var raw) ? raw : Encoding.UTF8.GetBytes(value);
            }
            else if (key.StartsWith("LIBARCHIVE.xattr.", StringComparison.Ordinal))
            {
                attribute = Uri.UnescapeDataString(key["LIBARCHIVE.xattr.".Length..]);
                bytes = Convert.FromBase64String(value);
            }
            else
            {
                continue;
            }

            // overlayfs' own attributes (opaque, redirect, metacopy) from a layer would let it steer the
            // merge (redirect to another directory); only the unpacker writes them.
            if (attribute.StartsWith("trusted.overlay.", StringComparison.Ordinal) || attribute.StartsWith("user.overlay.", StringComparison.Ordinal))
            {
                continue;
            }

            // Rootless, a file capability needs CAP_SETFCAP in a user namespace: the owners tool writes the
            // layer's at the end (LayerOwners.SetCapabilities). Only a regular file's counts, as for exec.
            if (!options.Privileged && attribute == "security.capability")
            {
                if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                {
                    capabilities[path] = bytes;
                }

                continue;
            }

            if (!tree.TrySetXattr(path, attribute, bytes) && options.Privileged && attribute.StartsWith("user.", StringComparison.Ordinal))
            {
                throw new LayerFormatException($"cannot set xattr {attribute} on '{path}'");
            }
        }
    }

    /// <summary>gzip and zstd by their magic numbers (media types are often wrong in the wild), else a plain tar.</summary>
    internal static Stream Decompress(Stream input)
    {
        Span<byte> magic = stackalloc byte[4];
        var read = input.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        input.Position = 0;
        if (read >= 2 && magic[0] == 0x1f && magic[1] == 0x8b)
        {
            return new GZipStream(input, CompressionMode.Decompress, leaveOpen: true);
        }

        if (read == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
        {
            return new ZstdSharp.DecompressionStream(input, leaveOpen: true);
        }

        return new NonClosingStream(input);
    }

    private sealed class NonClosingStream(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override int Read(Span<byte> buffer) => inner.Read(buffer);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>A layer archive that is not a valid tar, or holds an entry the unpacker refuses.</summary>
internal sealed class LayerFormatException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>True when the target refused a write because it is read-only (EROFS).</summary>
    public bool ReadOnly { get; init; }

    /// <summary>True when the target refused a write for want of permission (EACCES, EPERM).</summary>
    public bool Denied { get; init; }
}

/// <summary>Hashes everything read through it (sha256), for digests verified while streaming.</summary>
internal sealed class HashingReadStream(Stream inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => Count;

    public long Count { get; private set; }

    public override long Position { get => Count; set => throw new NotSupportedException(); }

    public byte[] Hash() => _hash.GetHashAndReset();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        _hash.AppendData(buffer[..n]);
        Count += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        _hash.AppendData(buffer.Span[..n]);
        Count += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}
