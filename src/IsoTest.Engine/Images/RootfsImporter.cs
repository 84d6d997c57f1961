using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace IsoTest.Engine.Images;

/// <summary>
/// <c>docker import</c>: one root filesystem tar (plain, gzip or zstd) becomes a one-layer image with the
/// given defaults. The tar is stored as the layer's blob as it came, the config and manifest are written
/// here, and the image is completed (unpacked) and tagged like a pulled one.
/// </summary>
internal sealed class RootfsImporter(ImageStore store, ImageResolver resolver)
{
    public async Task<StoredImage> ImportAsync(Stream tar, ImageReference tag, ContainerDefaults defaults, CancellationToken cancellationToken)
    {
        var what = tag.ToString();
        var tmp = store.NewTempPath("import");
        try
        {
            // Spooled first: the blob's digest (its name) and the diff id are known only at the end.
            var file = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                await tar.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                if (file.Length == 0)
                {
                    throw new ImagePullException(what, "the import sent no data: give a tar of a root filesystem (docker import FILE, or - with the tar on stdin).");
                }

                file.Position = 0;
                var blobDigest = "sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken).ConfigureAwait(false));
                file.Position = 0;
                string diffId;
                string mediaType;
                try
                {
                    using var plain = LayerUnpacker.Decompress(file);
                    mediaType = plain switch
                    {
                        System.IO.Compression.GZipStream => MediaTypes.OciLayerGzip,
                        ZstdSharp.DecompressionStream => MediaTypes.OciLayerZstd,
                        _ => MediaTypes.OciLayerTar,
                    };
                    diffId = "sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(plain, cancellationToken).ConfigureAwait(false));
                }
                catch (InvalidDataException e)
                {
                    throw new ImagePullException(what, $"the import is not a readable tar (plain, gzip or zstd): {e.Message}", e);
                }

                file.Position = 0;
                await store.EnsureBlobAsync(blobDigest, (s, ct) => file.CopyToAsync(s, ct), cancellationToken).ConfigureAwait(false);
                var size = file.Length;

                var config = new ImageConfigDocument(Platform.Host.Architecture, Platform.Host.Os, Platform.Host.Variant, DateTimeOffset.UtcNow, defaults,
                    new RootFsSection("layers", [diffId]));
                var configBytes = JsonSerializer.SerializeToUtf8Bytes(config, OciJson.Default.ImageConfigDocument);
                var configDigest = ImageStore.Digest(configBytes);
                await store.PutBlobAsync(configDigest, configBytes, cancellationToken).ConfigureAwait(false);

                var manifest = Encoding.UTF8.GetBytes(
                    $$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{"mediaType":"{{MediaTypes.OciConfig}}","digest":"{{configDigest}}","size":{{configBytes.Length}}},"layers":[{"mediaType":"{{mediaType}}","digest":"{{blobDigest}}","size":{{size}}}]}""");
                var manifestDigest = ImageStore.Digest(manifest);
                await store.PutBlobAsync(manifestDigest, manifest, cancellationToken).ConfigureAwait(false);

                // A tar the unpacker refuses (traversal, escaping links) is an ImageUnpackException naming the entry.
                var image = await resolver.CompleteAsync(tag, manifestDigest, source: null, progress: null, cancellationToken).ConfigureAwait(false);
                store.Tag(tag, image.ManifestDigest);
                return image with { Reference = tag };
            }
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
