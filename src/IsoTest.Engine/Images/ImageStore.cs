using System.Security.Cryptography;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.Images;

/// <summary>An image the store holds completely: its manifest, config and unpacked layers, bottom first.</summary>
internal sealed record StoredImage(
    ImageReference Reference,
    string ManifestDigest,
    string ConfigDigest,
    ImageConfigDocument Config,
    IReadOnlyList<StoredLayer> Layers,
    long Size);

/// <summary>One unpacked layer: its tree (an overlay lower dir) and the short link overlay mount options name it by.</summary>
internal sealed record StoredLayer(string DiffId, string Directory, string ShortLink);

/// <summary>
/// Content-addressed image store. On disk:
/// <code>
/// blobs/sha256/HEX       manifests, configs, compressed layers (verified before they get this name)
/// layers/HEX             a layer unpacked in overlay form, named by its diff id (one per layer, shared)
/// l/SHORT -> ../layers/HEX   short names, so many lower dirs fit in one page of mount options (overlay2's trick)
/// refs/ESCAPED-REFERENCE the manifest digest a tag points to
/// locks/, tmp/           per-blob and per-layer locks; partial downloads and unpacks
/// </code>
/// Everything becomes visible by an atomic rename after it is complete, and a tag is written last, so
/// a crash (even kill -9) mid-pull leaves only files under tmp/ that nothing reads and the next prune
/// removes. Concurrent pullers of one blob, in any process, serialise on its lock: one downloads, the
/// others find it there.
/// </summary>
internal sealed class ImageStore
{
    private const int ShortLinkLength = 12;

    public ImageStore(string root, UnpackOptions? unpack = null)
    {
        Root = Path.GetFullPath(root);
        Unpack = unpack ?? UnpackOptions.ForThisProcess;
        foreach (var dir in new[] { BlobDirectory, LayerDirectory, LinkDirectory, RefDirectory, LockDirectory, TmpDirectory })
        {
            Directory.CreateDirectory(dir);
        }
    }

    public string Root { get; }

    public UnpackOptions Unpack { get; }

    private string BlobDirectory => Path.Combine(Root, "blobs", "sha256");

    /// <summary>Where layers are unpacked: <c>layers</c>, or rootless with subordinate ranges <c>layers-KEY</c> (owners shifted for those ranges: another tree than the caller-owned one).</summary>
    internal string LayerDirectory => Path.Combine(Root, "layers" + FlavorSuffix);

    private string FlavorSuffix => Unpack.Owners is { } owners ? "-" + owners.Key : "";

    private string LinkDirectory => Path.Combine(Root, "l" + FlavorSuffix);

    private string RefDirectory => Path.Combine(Root, "refs");

    private string LockDirectory => Path.Combine(Root, "locks");

    private string TmpDirectory => Path.Combine(Root, "tmp");

    /// <summary>
    /// <c>ISOTEST_IMAGE_STORE</c> when set; else <c>/var/lib/isotest</c> as root and
    /// <c>$XDG_DATA_HOME/isotest</c> (<c>~/.local/share/isotest</c>) for other users, as Docker and Podman place theirs.
    /// </summary>
    public static string DefaultRoot()
    {
        var configured = Environment.GetEnvironmentVariable("ISOTEST_IMAGE_STORE");
        if (!string.IsNullOrEmpty(configured))
        {
            return configured;
        }

        if (Credentials.IsRoot)
        {
            return "/var/lib/isotest";
        }

        var data = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        return Path.Combine(string.IsNullOrEmpty(data) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share") : data, "isotest");
    }

    public string BlobPath(string digest) => Path.Combine(BlobDirectory, Hex(digest));

    public bool HasBlob(string digest) => File.Exists(BlobPath(digest));

    public byte[] ReadBlob(string digest) => File.ReadAllBytes(BlobPath(digest));

    /// <summary>
    /// Makes blob <paramref name="digest"/> present: when it is missing, <paramref name="download"/> writes it
    /// to a temporary file (the digest is computed while it writes) and it gets its name only if the digest
    /// matches. Concurrent callers for the same digest, in any process, wait for the first.
    /// </summary>
    /// <returns>True when this call downloaded it; false when it was there, or another puller brought it while this one waited.</returns>
    public async Task<bool> EnsureBlobAsync(string digest, Func<Stream, CancellationToken, Task> download, CancellationToken cancellationToken)
    {
        if (HasBlob(digest))
        {
            return false;
        }

        using var held = await Native.FileLock.AcquireAsync(LockPath("blob", digest), cancellationToken).ConfigureAwait(false);
        if (HasBlob(digest))
        {
            return false; // another puller finished it while we waited
        }

        var tmp = TempPath(digest);
        try
        {
            string actual;
            var file = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                using var hashing = new HashingWriteStream(file);
                await download(hashing, cancellationToken).ConfigureAwait(false);
                await hashing.FlushAsync(cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
                actual = "sha256:" + Convert.ToHexStringLower(hashing.Hash());
            }

            if (actual != digest)
            {
                throw new DigestMismatchException(digest, actual);
            }

            File.Move(tmp, BlobPath(digest));
            return true;
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    /// <summary>Stores bytes already in memory (manifests, configs) under their digest.</summary>
    public Task<bool> PutBlobAsync(string digest, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        EnsureBlobAsync(digest, (s, ct) => s.WriteAsync(content, ct).AsTask(), cancellationToken);

    public static string Digest(ReadOnlySpan<byte> content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    public bool HasLayer(string diffId) => Directory.Exists(LayerPath(diffId));

    /// <summary>
    /// Makes layer <paramref name="diffId"/> present, unpacking blob <paramref name="blobDigest"/> once for
    /// every image and process that has it. The tree must hash to <paramref name="diffId"/>; a layer that does
    /// not, or that the unpacker refuses, leaves nothing behind.
    /// </summary>
    public async Task<StoredLayer> EnsureLayerAsync(string diffId, string blobDigest, CancellationToken cancellationToken, Action? onUnpack = null)
    {
        if (!HasLayer(diffId))
        {
            using var held = await Native.FileLock.AcquireAsync(LockPath("layer", diffId), cancellationToken).ConfigureAwait(false);
            if (!HasLayer(diffId))
            {
                onUnpack?.Invoke();
                var tmp = TempPath(diffId);
                Directory.CreateDirectory(tmp);
                try
                {
                    var result = await Task.Run(() => LayerUnpacker.Unpack(BlobPath(blobDigest), tmp, Unpack, cancellationToken), cancellationToken).ConfigureAwait(false);
                    if (result.DiffId != diffId)
                    {
                        throw new DigestMismatchException(diffId, result.DiffId, uncompressed: true);
                    }

                    // The tree's own mode and owner stay the store's (0755, the caller); the agent gives the
                    // merged root the lowest layer's.
                    Directory.Move(tmp, LayerPath(diffId));
                }
                finally
                {
                    RemoveTree(tmp);
                }
            }
        }

        return Layer(diffId);
    }

    /// <summary>The stored layer with its short link (made on first use; a symlink appears atomically).</summary>
    public StoredLayer Layer(string diffId)
    {
        var hex = Hex(diffId);
        var link = Path.Combine(LinkDirectory, hex[..ShortLinkLength]);
        if (!Path.Exists(link))
        {
            try
            {
                File.CreateSymbolicLink(link, Path.Combine("..", "layers" + FlavorSuffix, hex));
            }
            catch (IOException) when (Path.Exists(link))
            {
                // made by another process in the meantime
            }
        }

        return new StoredLayer(diffId, LayerPath(diffId), link);
    }

    /// <summary>Points <paramref name="reference"/> at a manifest whose blobs and layers are all present (written last).</summary>
    public void Tag(ImageReference reference, string manifestDigest)
    {
        var path = RefPath(reference);
        var tmp = TempPath("ref-" + Path.GetFileName(path));
        File.WriteAllText(tmp, manifestDigest + "\n");
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The manifest digest <paramref name="reference"/> names here, or null.</summary>
    public string? ManifestOf(ImageReference reference)
    {
        if (reference.Digest is { } pinned)
        {
            return HasBlob(pinned) ? pinned : null;
        }

        try
        {
            return File.ReadAllText(RefPath(reference)).Trim();
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The complete image <paramref name="reference"/> names, or null when the store lacks it (or any part of it).</summary>
    public StoredImage? Find(ImageReference reference)
    {
        var manifestDigest = ManifestOf(reference);
        return manifestDigest is null ? null : Load(reference, manifestDigest);
    }

    /// <summary>Reads a manifest and everything it names; null when a part is missing (a pull in progress, a prune).</summary>
    public StoredImage? Load(ImageReference reference, string manifestDigest)
    {
        if (!HasBlob(manifestDigest))
        {
            return null;
        }

        var manifest = ManifestDocument.Parse(ReadBlob(manifestDigest), $"manifest {manifestDigest}");
        if (manifest.IsIndex || !HasBlob(manifest.Config!.Digest))
        {
            return null;
        }

        var config = ImageConfigDocument.Parse(ReadBlob(manifest.Config.Digest), $"config {manifest.Config.Digest}");
        var layers = new List<StoredLayer>();
        foreach (var diffId in config.RootFs.DiffIds)
        {
            if (!HasLayer(diffId))
            {
                return null;
            }

            layers.Add(Layer(diffId));
        }

        return new StoredImage(reference, manifestDigest, manifest.Config.Digest, config, layers, manifest.Layers!.Sum(l => l.Size));
    }

    /// <summary>Every tag, with its image when complete.</summary>
    public IReadOnlyList<StoredImage> List()
    {
        var images = new List<StoredImage>();
        foreach (var file in Directory.EnumerateFiles(RefDirectory))
        {
            if (ImageReference.TryParse(Uri.UnescapeDataString(Path.GetFileName(file)), out var reference)
                && Find(reference) is { } image)
            {
                images.Add(image);
            }
        }

        return images.OrderBy(i => i.Reference.ToString(), StringComparer.Ordinal).ToList();
    }

    /// <summary>Removes a tag (not its blobs: <see cref="Prune"/> does, once nothing refers to them). False when there was none.</summary>
    public bool Untag(ImageReference reference)
    {
        var path = RefPath(reference);
        if (!File.Exists(path))
        {
            return false;
        }

        File.Delete(path);
        return true;
    }

    /// <summary>
    /// Takes a shared hold on a container's layers: <see cref="Prune"/> removes no layer that is held.
    /// The kernel drops the holds when the process dies.
    /// </summary>
    public IDisposable HoldLayers(IEnumerable<StoredLayer> layers)
    {
        var holds = layers.Select(l => (IDisposable)Native.FileLock.Share(LockPath("use", l.DiffId))).ToList();
        return new Holds(holds);
    }

    /// <summary>
    /// A running container's hold on its image: its layers (<see cref="HoldLayers"/>) and its manifest and config blobs,
    /// so that neither <c>isotest image prune</c> nor any other process's prune removes them while it runs, even after
    /// <c>rmi</c>. The caller checks afterwards that the layers are still there (a prune may have finished just before).
    /// </summary>
    public IDisposable HoldImage(StoredImage image)
    {
        var holds = new List<IDisposable> { HoldLayers(image.Layers) };
        holds.AddRange(new[] { image.ManifestDigest, image.ConfigDigest }.Select(d => (IDisposable)Native.FileLock.Share(LockPath("use", d))));
        return new Holds(holds);
    }

    /// <summary>
    /// Garbage collection: removes blobs and layers no tag reaches, short links to nothing, and leftovers
    /// in tmp/ whose writer is gone. What a running container holds (<see cref="HoldImage"/>) stays. Returns what it removed.
    /// </summary>
    public PruneResult Prune()
    {
        var liveBlobs = new HashSet<string>(StringComparer.Ordinal);
        var liveLayers = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(RefDirectory))
        {
            var digest = File.ReadAllText(file).Trim();
            Mark(digest, liveBlobs, liveLayers);
        }

        long freed = 0;
        var blobs = 0;
        var layers = 0;
        foreach (var file in Directory.EnumerateFiles(BlobDirectory))
        {
            var digest = "sha256:" + Path.GetFileName(file);
            if (liveBlobs.Contains(digest))
            {
                continue;
            }

            using var held = Native.FileLock.TryAcquire(LockPath("blob", digest));
            using var used = Native.FileLock.TryAcquire(LockPath("use", digest));
            if (held is null || used is null)
            {
                continue; // being written, or the manifest or config of a running container's image
            }

            freed += new FileInfo(file).Length;
            File.Delete(file);
            blobs++;
        }

        foreach (var dir in Directory.EnumerateDirectories(LayerDirectory))
        {
            var diffId = "sha256:" + Path.GetFileName(dir);
            if (liveLayers.Contains(diffId))
            {
                continue;
            }

            using var unpacking = Native.FileLock.TryAcquire(LockPath("layer", diffId));
            using var used = Native.FileLock.TryAcquire(LockPath("use", diffId));
            if (unpacking is null || used is null)
            {
                continue;
            }

            RemoveTree(dir);
            layers++;
        }

        foreach (var link in Directory.EnumerateFileSystemEntries(LinkDirectory))
        {
            if (!Directory.Exists(link))
            {
                File.Delete(link);
            }
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(TmpDirectory))
        {
            // tmp names start with the hex of what they hold; its lock is held while it is written.
            var name = Path.GetFileName(entry);
            var key = name.Split('.')[0];
            using var blobLock = Native.FileLock.TryAcquire(Path.Combine(LockDirectory, $"blob-{key}.lock"));
            using var layerLock = Native.FileLock.TryAcquire(Path.Combine(LockDirectory, $"layer-{key}.lock"));
            if (blobLock is null || layerLock is null || name.StartsWith("ref-", StringComparison.Ordinal))
            {
                continue;
            }

            RemoveTree(entry);
        }

        // Lock files stay: removing one while another process opens it would let two holders lock two
        // different inodes of the same name.
        return new PruneResult(blobs, layers, freed);
    }

    private void Mark(string manifestDigest, HashSet<string> blobs, HashSet<string> layers)
    {
        blobs.Add(manifestDigest);
        if (!HasBlob(manifestDigest))
        {
            return;
        }

        var manifest = ManifestDocument.Parse(ReadBlob(manifestDigest), $"manifest {manifestDigest}");
        if (manifest.IsIndex)
        {
            foreach (var child in manifest.Manifests!)
            {
                Mark(child.Digest, blobs, layers);
            }

            return;
        }

        blobs.Add(manifest.Config!.Digest);
        foreach (var layer in manifest.Layers!)
        {
            blobs.Add(layer.Digest);
        }

        if (HasBlob(manifest.Config.Digest))
        {
            foreach (var diffId in ImageConfigDocument.Parse(ReadBlob(manifest.Config.Digest), "config").RootFs.DiffIds)
            {
                layers.Add(diffId);
            }
        }
    }

    /// <summary>
    /// Removes a tree this user wrote, including directories it made read-only (an image's 0555 dirs) and, with
    /// subordinate ranges, files owned by them (<see cref="LayerOwners.Disown"/> first).
    /// </summary>
    internal static void RemoveTree(string path)
    {
        if (File.Exists(path) || (Path.Exists(path) && new FileInfo(path).LinkTarget is not null))
        {
            File.Delete(path);
            return;
        }

        if (!Directory.Exists(path))
        {
            return;
        }

        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (UnauthorizedAccessException) when (LayerOwners.ForThisProcess is { } owners)
        {
            owners.Disown(path);
            Directory.Delete(path, recursive: true);
        }
        catch (UnauthorizedAccessException)
        {
            foreach (var dir in Directory.EnumerateDirectories(path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = false }).Prepend(path))
            {
                File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            Directory.Delete(path, recursive: true);
        }
    }

    private string LayerPath(string diffId) => Path.Combine(LayerDirectory, Hex(diffId));

    private string RefPath(ImageReference reference) => Path.Combine(RefDirectory, Uri.EscapeDataString(reference.WithTag(reference.Tag ?? "latest").ToString()));

    private string LockPath(string kind, string digest) => Path.Combine(LockDirectory, $"{kind}-{Hex(digest)}.lock");

    /// <summary>A fresh path under tmp/ for a partial file (a prune removes what a crash leaves there).</summary>
    public string NewTempPath(string key) => TempPath(key);

    private string TempPath(string key) => Path.Combine(TmpDirectory, $"{(key.StartsWith("sha256:", StringComparison.Ordinal) ? Hex(key) : key)}.{Environment.ProcessId}.{Guid.NewGuid():N}");

    private static string Hex(string digest) =>
        digest.StartsWith("sha256:", StringComparison.Ordinal) && ImageReference.IsDigest(digest)
            ? digest["sha256:".Length..]
            : throw new FormatException($"'{digest}' is not a sha256 digest (the store keeps sha256 content only)");

    private sealed class Holds(List<IDisposable> holds) : IDisposable
    {
        public void Dispose() => holds.ForEach(h => h.Dispose());
    }
}

/// <summary>What a prune removed.</summary>
internal sealed record PruneResult(int Blobs, int Layers, long BlobBytes);

/// <summary>A blob or layer whose content does not hash to the digest that names it.</summary>
internal sealed class DigestMismatchException(string expected, string actual, bool uncompressed = false)
    : Exception($"{(uncompressed ? "the uncompressed layer" : "the content")} hashes to {actual}, not {expected}: it was corrupted or tampered with on the way")
{
    public string Expected { get; } = expected;

    public string Actual { get; } = actual;
}

/// <summary>Hashes everything written through it (sha256).</summary>
internal sealed class HashingWriteStream(Stream inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public long Count { get; private set; }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => Count;

    public override long Position { get => Count; set => throw new NotSupportedException(); }

    public byte[] Hash() => _hash.GetHashAndReset();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.AppendData(buffer);
        inner.Write(buffer);
        Count += buffer.Length;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _hash.AppendData(buffer.Span);
        await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        Count += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}
