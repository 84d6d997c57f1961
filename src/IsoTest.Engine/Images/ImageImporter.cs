using System.Formats.Tar;
using System.Text;
using System.Text.Json;

namespace IsoTest.Engine.Images;

/// <summary>
/// Imports images without a registry: <c>docker save</c> archives (manifest.json, both the classic
/// <c>ID/layer.tar</c> form and Docker 25's OCI form) and OCI image layouts (index.json + blobs/), as a
/// directory or a tar. Every file becomes a content-addressed blob first; manifests, layers and tags follow.
/// </summary>
internal sealed class ImageImporter(ImageStore store, ImageResolver resolver)
{
    private const string RefNameAnnotation = "org.opencontainers.image.ref.name";
    private const string ContainerdNameAnnotation = "io.containerd.image.name";

    /// <summary>Imports <paramref name="path"/> (a file or a directory) and returns the images it held, tagged as the archive names them.</summary>
    public async Task<IReadOnlyList<StoredImage>> ImportAsync(string path, CancellationToken cancellationToken)
    {
        var what = $"archive {path}";
        var files = new Dictionary<string, string>(StringComparer.Ordinal); // path in archive -> blob digest
        var small = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        try
        {
            if (Directory.Exists(path))
            {
                foreach (var file in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories))
                {
                    var name = Path.GetRelativePath(path, file).Replace('\\', '/');
                    var input = File.OpenRead(file);
                    await using (input.ConfigureAwait(false))
                    {
                        await AddAsync(name, input, files, small, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            else if (File.Exists(path))
            {
                var input = File.OpenRead(path);
                await using (input.ConfigureAwait(false))
                {
                    using var decompressed = LayerUnpacker.Decompress(input);
                    var reader = new TarReader(decompressed);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } entry)
                        {
                            if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile && entry.DataStream is not null)
                            {
                                await AddAsync(LayerUnpacker.Clean(entry.Name), entry.DataStream, files, small, cancellationToken).ConfigureAwait(false);
                            }
                        }
                    }
                }
            }
            else
            {
                throw new ImagePullException(path, "there is no such file or directory: give a docker save archive or an OCI image layout (directory or tar).");
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or LayerFormatException)
        {
            throw new ImagePullException(path, $"not a readable image archive: {e.Message}", e);
        }

        var manifests = new List<(string Digest, IReadOnlyList<ImageReference> Tags)>();
        if (small.TryGetValue("manifest.json", out var saveManifest))
        {
            await ImportDockerSaveAsync(path, saveManifest, files, small, manifests, cancellationToken).ConfigureAwait(false);
        }
        else if (small.TryGetValue("index.json", out var index))
        {
            ImportOciIndex(path, index, manifests);
        }
        else
        {
            throw new ImagePullException(path, $"{what} has neither manifest.json (docker save) nor index.json (OCI image layout).");
        }

        var images = new List<StoredImage>();
        foreach (var (digest, tags) in manifests)
        {
            var reference = tags.Count > 0 ? tags[0] : ImageReference.Parse($"isotest.local/import:{digest["sha256:".Length..][..12]}");
            var image = await resolver.CompleteAsync(reference, digest, source: null, progress: null, cancellationToken).ConfigureAwait(false);
            foreach (var tag in tags.DefaultIfEmpty(reference))
            {
                store.Tag(tag, image.ManifestDigest);
            }

            images.Add(image with { Reference = reference });
        }

        return images;
    }

    private async Task AddAsync(string name, Stream content, Dictionary<string, string> files, Dictionary<string, byte[]> small, CancellationToken cancellationToken)
    {
        if (name.StartsWith("blobs/sha256/", StringComparison.Ordinal))
        {
            var digest = "sha256:" + name["blobs/sha256/".Length..];
            if (!ImageReference.IsDigest(digest))
            {
                throw new FormatException($"'{name}' is not named by a sha256 digest");
            }

            try
            {
                await store.EnsureBlobAsync(digest, (s, ct) => content.CopyToAsync(s, ct), cancellationToken).ConfigureAwait(false);
            }
            catch (DigestMismatchException e)
            {
                throw new FormatException($"{name}: {e.Message}", e);
            }

            files[name] = digest;
            if (!store.HasBlob(digest) || new FileInfo(store.BlobPath(digest)).Length < 1 << 20)
            {
                small[name] = store.ReadBlob(digest);
            }

            return;
        }

        // Classic docker save: ID/layer.tar, ID.json; named by path, so stored under the digest they hash to.
        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        var bytes = buffer.ToArray();
        var hash = ImageStore.Digest(bytes);
        await store.PutBlobAsync(hash, bytes, cancellationToken).ConfigureAwait(false);
        files[name] = hash;
        if (bytes.Length < 1 << 20)
        {
            small[name] = bytes;
        }
    }

    private async Task ImportDockerSaveAsync(string path, byte[] manifestJson, Dictionary<string, string> files, Dictionary<string, byte[]> small,
        List<(string, IReadOnlyList<ImageReference>)> manifests, CancellationToken cancellationToken)
    {
        DockerSaveEntry[] entries;
        try
        {
            entries = JsonSerializer.Deserialize(manifestJson, OciJson.Default.DockerSaveEntryArray) ?? [];
        }
        catch (JsonException e)
        {
            throw new ImagePullException(path, $"manifest.json is not docker save's format: {e.Message}", e);
        }

        foreach (var entry in entries)
        {
            var configDigest = Lookup(path, files, entry.Config);
            var layers = entry.Layers.Select(l => Lookup(path, files, l)).ToArray();

            // The archive's layers are uncompressed tars: a manifest of our own names them as such, so
            // the image is stored like a pulled one (its id, the config digest, is Docker's too).
            var manifest = new StringBuilder();
            manifest.Append("{\"schemaVersion\":2,\"mediaType\":\"").Append(MediaTypes.OciManifest).Append("\",\"config\":{\"mediaType\":\"")
                .Append(MediaTypes.OciConfig).Append("\",\"digest\":\"").Append(configDigest).Append("\",\"size\":")
                .Append(new FileInfo(store.BlobPath(configDigest)).Length).Append("},\"layers\":[");
            for (var i = 0; i < layers.Length; i++)
            {
                manifest.Append(i == 0 ? "" : ",").Append("{\"mediaType\":\"").Append(MediaTypes.OciLayerTar).Append("\",\"digest\":\"")
                    .Append(layers[i]).Append("\",\"size\":").Append(new FileInfo(store.BlobPath(layers[i])).Length).Append('}');
            }

            manifest.Append("]}");
            var bytes = Encoding.UTF8.GetBytes(manifest.ToString());
            var digest = ImageStore.Digest(bytes);
            await store.PutBlobAsync(digest, bytes, cancellationToken).ConfigureAwait(false);
            var tags = (entry.RepoTags ?? []).Select(t => ImageReference.TryParse(t, out var r) ? r : null).OfType<ImageReference>().ToList();
            manifests.Add((digest, tags));
        }

        _ = small;
    }

    private void ImportOciIndex(string path, byte[] indexJson, List<(string, IReadOnlyList<ImageReference>)> manifests)
    {
        ManifestDocument index;
        try
        {
            index = ManifestDocument.Parse(indexJson, "index.json");
        }
        catch (FormatException e)
        {
            throw new ImagePullException(path, e.Message, e);
        }

        foreach (var descriptor in index.Manifests ?? [])
        {
            var tags = new List<ImageReference>();
            if (descriptor.Annotations?.GetValueOrDefault(ContainerdNameAnnotation) is { } full && ImageReference.TryParse(full, out var named))
            {
                tags.Add(named);
            }
            else if (descriptor.Annotations?.GetValueOrDefault(RefNameAnnotation) is { } refName
                && ImageReference.TryParse(refName.Contains(':', StringComparison.Ordinal) || refName.Contains('/', StringComparison.Ordinal) ? refName : $"isotest.local/import:{refName}", out var tagged))
            {
                tags.Add(tagged);
            }

            if (!store.HasBlob(descriptor.Digest))
            {
                throw new ImagePullException(path, $"index.json names {descriptor.Digest}, which the layout's blobs/ lack.");
            }

            manifests.Add((descriptor.Digest, tags));
        }
    }

    private static string Lookup(string path, Dictionary<string, string> files, string name) =>
        files.TryGetValue(LayerUnpacker.Clean(name), out var digest)
            ? digest
            : throw new ImagePullException(path, $"manifest.json names '{name}', which the archive does not contain.");
}
