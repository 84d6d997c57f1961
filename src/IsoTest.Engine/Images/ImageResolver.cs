namespace IsoTest.Engine.Images;

/// <summary>Where the parts of an image come from when the store lacks them (a registry).</summary>
internal interface IImageSource
{
    /// <summary>A display name for errors: the registry host.</summary>
    string Name { get; }

    /// <summary>The manifest or index <paramref name="reference"/> names: its bytes, verified against a pinned digest.</summary>
    Task<FetchedManifest> GetManifestAsync(ImageReference reference, string tagOrDigest, CancellationToken cancellationToken);

    /// <summary>Writes blob <paramref name="blob"/> to <paramref name="destination"/>, reporting bytes as they arrive.</summary>
    Task GetBlobAsync(ImageReference reference, Descriptor blob, Stream destination, Action<long>? onBytes, CancellationToken cancellationToken);
}

internal sealed record FetchedManifest(byte[] Content, string Digest, string? MediaType);

/// <summary>
/// Turns a reference into a complete <see cref="StoredImage"/>: from the store, or pulled through an
/// <see cref="IImageSource"/> (manifest → platform → config → layers, each fetched and unpacked at most
/// once), tagging only when every part is in place. Owns the wording of every pull error.
/// </summary>
internal sealed class ImageResolver(ImageStore store, Func<ImageReference, IImageSource> sources, Platform? platform = null)
{
    public ImageStore Store { get; } = store;

    public Platform Platform { get; } = platform ?? Platform.Host;

    public async Task<StoredImage> ResolveAsync(ImageReference reference, ImagePullPolicy policy, IProgress<ImagePullProgress>? progress, CancellationToken cancellationToken)
    {
        if (policy != ImagePullPolicy.Always && Store.Find(reference) is { } cached)
        {
            return cached;
        }

        if (policy == ImagePullPolicy.Never)
        {
            throw new ImagePullException(reference.ToString(),
                "the engine's image store does not have this image and the pull policy is Never: pull it first (isotest pull, isotest load) or use ImagePullPolicy.Missing.");
        }

        return await PullAsync(reference, progress, cancellationToken).ConfigureAwait(false);
    }

    public async Task<StoredImage> PullAsync(ImageReference reference, IProgress<ImagePullProgress>? progress, CancellationToken cancellationToken)
    {
        var source = sources(reference);
        var fetched = await source.GetManifestAsync(reference, reference.ManifestReference, cancellationToken).ConfigureAwait(false);
        await Store.PutBlobAsync(fetched.Digest, fetched.Content, cancellationToken).ConfigureAwait(false);
        var image = await CompleteAsync(reference, fetched.Digest, source, progress, cancellationToken).ConfigureAwait(false);
        Store.Tag(reference, image.ManifestDigest);
        return image;
    }

    /// <summary>Makes every part of manifest (or index) <paramref name="manifestDigest"/> present; <paramref name="source"/> null means the store must already hold them.</summary>
    public async Task<StoredImage> CompleteAsync(ImageReference reference, string manifestDigest, IImageSource? source, IProgress<ImagePullProgress>? progress, CancellationToken cancellationToken)
    {
        var image = reference.ToString();
        var registry = source?.Name;
        var manifest = Parse(image, registry, manifestDigest);
        if (manifest.IsIndex)
        {
            var chosen = manifest.Manifests!.FirstOrDefault(m => Platform.Matches(m.Platform) && MediaTypes.IsManifest(m.MediaType))
                ?? manifest.Manifests!.FirstOrDefault(m => Platform.Matches(m.Platform))
                ?? throw new ImagePullException(image, registry,
                    $"the image has no variant for {Platform} (it has {string.Join(", ", manifest.Manifests!.Where(m => m.Platform is not null).Select(m => m.Platform!.ToString()).Distinct())}): choose a platform the index lists.");
            if (!Store.HasBlob(chosen.Digest))
            {
                var child = await Fetch(image, registry, source, chosen.Digest, "manifest").GetManifestAsync(reference, chosen.Digest, cancellationToken).ConfigureAwait(false);
                await Store.PutBlobAsync(chosen.Digest, child.Content, cancellationToken).ConfigureAwait(false);
            }

            manifestDigest = chosen.Digest;
            manifest = Parse(image, registry, manifestDigest);
            if (manifest.IsIndex)
            {
                throw new ImagePullException(image, registry, $"the index entry for {Platform} ({chosen.Digest}) is another index, not an image manifest.");
            }
        }

        progress?.Report(new ImagePullProgress(image, manifestDigest, ImagePullPhase.Resolved));
        var configDescriptor = manifest.Config!;
        if (!Store.HasBlob(configDescriptor.Digest))
        {
            await DownloadAsync(image, registry, Fetch(image, registry, source, configDescriptor.Digest, "config"), reference, configDescriptor, null, cancellationToken).ConfigureAwait(false);
        }

        ImageConfigDocument config;
        try
        {
            config = ImageConfigDocument.Parse(Store.ReadBlob(configDescriptor.Digest), $"config {configDescriptor.Digest}");
        }
        catch (FormatException e)
        {
            throw new ImagePullException(image, registry, e.Message, e);
        }

        var layers = manifest.Layers!;
        if (layers.Length != config.RootFs.DiffIds.Length)
        {
            throw new ImagePullException(image, registry, $"the manifest lists {layers.Length} layers but the config {config.RootFs.DiffIds.Length} diff ids: the image is malformed.");
        }

        // Layers download two at a time (most images have a few large ones); each unpacks as soon as it is complete.
        using var gate = new SemaphoreSlim(2);
        var tasks = layers.Select(async (layer, i) =>
        {
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var diffId = config.RootFs.DiffIds[i];
                if (Store.HasLayer(diffId))
                {
                    progress?.Report(new ImagePullProgress(image, layer.Digest, ImagePullPhase.AlreadyExists, layer.Size, layer.Size));
                    return;
                }

                if (!Store.HasBlob(layer.Digest)
                    && await DownloadAsync(image, registry, Fetch(image, registry, source, layer.Digest, "layer"), reference, layer, progress, cancellationToken).ConfigureAwait(false))
                {
                    progress?.Report(new ImagePullProgress(image, layer.Digest, ImagePullPhase.Downloaded, layer.Size, layer.Size));
                }

                var unpacked = false;
                try
                {
                    await Store.EnsureLayerAsync(diffId, layer.Digest, cancellationToken, () =>
                    {
                        unpacked = true;
                        progress?.Report(new ImagePullProgress(image, layer.Digest, ImagePullPhase.Extracting, layer.Size, layer.Size));
                    }).ConfigureAwait(false);
                }
                catch (LayerFormatException e)
                {
                    throw new ImageUnpackException(image, layer.Digest, e.Message + ": the layer was refused and nothing of it was kept.", e);
                }
                catch (DigestMismatchException e)
                {
                    throw new ImageUnpackException(image, layer.Digest, $"{e.Message} (the config's diff id for this layer).", e);
                }

                // Unpacked by another puller while this one waited: it is there all the same.
                progress?.Report(new ImagePullProgress(image, layer.Digest, unpacked ? ImagePullPhase.Complete : ImagePullPhase.AlreadyExists, layer.Size, layer.Size));
            }
            finally
            {
                gate.Release();
            }
        }).ToList();
        await Task.WhenAll(tasks).ConfigureAwait(false);

        return Store.Load(reference, manifestDigest)
            ?? throw new ImagePullException(image, registry, "a part of the image vanished from the store while it was pulled (a concurrent prune): pull again.");
    }

    private ManifestDocument Parse(string image, string? registry, string digest)
    {
        try
        {
            return ManifestDocument.Parse(Store.ReadBlob(digest), $"manifest {digest}");
        }
        catch (FormatException e)
        {
            throw new ImagePullException(image, registry, e.Message, e);
        }
    }

    private static IImageSource Fetch(string image, string? registry, IImageSource? source, string digest, string what) =>
        source ?? throw new ImagePullException(image, registry, $"the archive lacks the {what} {digest}: it is incomplete.");

    /// <returns>True when this call downloaded the blob (false: another puller did while this one waited).</returns>
    private async Task<bool> DownloadAsync(string image, string? registry, IImageSource source, ImageReference reference, Descriptor blob,
        IProgress<ImagePullProgress>? progress, CancellationToken cancellationToken)
    {
        try
        {
            return await Store.EnsureBlobAsync(blob.Digest, async (destination, ct) =>
            {
                long done = 0;
                await source.GetBlobAsync(reference, blob, destination, n =>
                {
                    done += n;
                    progress?.Report(new ImagePullProgress(image, blob.Digest, ImagePullPhase.Downloading, done, blob.Size));
                }, ct).ConfigureAwait(false);
                if (blob.Size > 0 && done != blob.Size)
                {
                    throw new ImagePullException(image, registry, $"blob {blob.Digest} arrived with {done} bytes, the manifest says {blob.Size}: the stream was truncated or the manifest is wrong.");
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (DigestMismatchException e)
        {
            throw new ImagePullException(image, registry, $"blob {blob.Digest}: {e.Message}; nothing was kept.", e);
        }
    }
}
