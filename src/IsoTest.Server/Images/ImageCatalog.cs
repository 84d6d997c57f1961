using System.Security.Cryptography;
using System.Text;
using IsoTest.Engine.Images;
using IsoTest.Server.Http;

namespace IsoTest.Server.Images;

/// <summary>An image a container can be created from, and how it becomes the builder's root.</summary>
/// <param name="Tags">Its names, familiar form (<c>busybox:latest</c>), as RepoTags shows them.</param>
/// <param name="Id">The image id: its config's digest, as dockerd's.</param>
/// <param name="Created">When it was built (the config's created time).</param>
/// <param name="Size">Its layers' size in bytes, as stored.</param>
/// <param name="Defaults">The image config's runtime defaults; null for the server's own images.</param>
/// <param name="Layers">The diff ids, bottom first (RootFS.Layers).</param>
/// <param name="Stored">The store's copy, for images from the store.</param>
/// <param name="Apply">How a container's builder gets this image as its root.</param>
internal sealed record ResolvedImage(
    IReadOnlyList<string> Tags,
    string Id,
    DateTimeOffset Created,
    long Size,
    ContainerDefaults? Defaults,
    IReadOnlyList<string> Layers,
    StoredImage? Stored,
    Func<ContainerBuilder, ContainerBuilder> Apply)
{
    /// <summary>The name a container shows as its Image: the first tag.</summary>
    public string Name => Tags.Count > 0 ? Tags[0] : Id;

    public ContainerBuilder ApplyTo(ContainerBuilder builder) => Apply(builder);
}

/// <summary>
/// Finds the image a request names: the server's own (<c>isotest/host</c>, any tag: the host's <c>/</c>
/// read-only behind a private overlay, as <c>FromHost()</c> gives, so `docker run isotest/host redis-server`
/// runs what is installed here; <c>testcontainers/ryuk</c>), or one in the engine's image store (pulled,
/// imported, loaded), by name, by id or by a prefix of its id of at least 4 digits, as dockerd matches.
/// </summary>
internal sealed class ImageCatalog(ImageService store)
{
    public const string HostImage = "isotest/host";

    private static readonly DateTimeOffset Started = DateTimeOffset.UtcNow;

    public ImageService Store => store;

    /// <summary>Every image, one entry per image id with all its tags (docker images shows one row per tag).</summary>
    public IReadOnlyList<ResolvedImage> List() =>
        [Host(), .. store.List().GroupBy(i => i.ConfigDigest, StringComparer.Ordinal).Select(g => FromStore(g.First(), g.Select(i => i.Reference.ToFamiliarString())))];

    public ResolvedImage Resolve(string? reference)
    {
        if (string.IsNullOrWhiteSpace(reference))
        {
            throw DockerApiException.BadRequest("no image given: name one (e.g. isotest/host)");
        }

        return TryResolve(reference) ?? throw DockerApiException.NoSuchImage(reference);
    }

    public ResolvedImage? TryResolve(string reference)
    {
        if (IsBuiltin(reference))
        {
            return Normalise(reference) == HostImage ? Host() : Builtin(reference, "testcontainers/ryuk");
        }

        if (store.Find(reference) is { } stored)
        {
            return FromStore(stored, [stored.Reference.ToFamiliarString()]);
        }

        // By id: sha256:HEX, HEX, or a prefix of 4 or more hex digits (docker rmi 3f57d9401f8d).
        var hex = reference.StartsWith("sha256:", StringComparison.Ordinal) ? reference["sha256:".Length..] : reference;
        if (hex.Length >= 4 && hex.All(Uri.IsHexDigit))
        {
            var matches = List().Where(i => i.Id["sha256:".Length..].StartsWith(hex, StringComparison.OrdinalIgnoreCase)).ToList();
            return matches.Count switch
            {
                0 => null,
                1 => matches[0],
                _ => throw DockerApiException.BadRequest($"{reference} is an ambiguous image id prefix ({matches.Count} images): give more digits"),
            };
        }

        return null;
    }

    /// <summary>Whether the server provides <paramref name="reference"/> itself (no store, nothing to pull).</summary>
    public static bool IsBuiltin(string reference) =>
        Normalise(reference) == HostImage || Containers.ReaperContainer.IsReaperImage(reference);

    /// <summary>Drops a default registry and the tag: docker.io/isotest/host:latest → isotest/host.</summary>
    private static string Normalise(string reference)
    {
        var name = reference.StartsWith("docker.io/", StringComparison.Ordinal) ? reference["docker.io/".Length..] : reference;
        var at = name.IndexOf('@', StringComparison.Ordinal);
        name = at >= 0 ? name[..at] : name;
        var colon = name.LastIndexOf(':');
        return colon > name.LastIndexOf('/') ? name[..colon] : name;
    }

    private static ResolvedImage FromStore(StoredImage image, IEnumerable<string> tags)
    {
        // The container runs from the image's manifest digest, so a re-tag or re-pull meanwhile cannot change it.
        var pinned = $"{image.Reference.Name}@{image.ManifestDigest}";
        return new ResolvedImage([.. tags], image.ConfigDigest, image.Config.Created ?? DateTimeOffset.UnixEpoch, image.Size, image.Config.Config ?? new ContainerDefaults(),
            image.Config.RootFs.DiffIds, image, b => b.FromImage(pinned));
    }

    private static ResolvedImage Host() => Builtin(HostImage + ":latest", HostImage);

    /// <summary>An image the server provides itself, with a stable id; its root is the host's (the reaper runs no process at all).</summary>
    private static ResolvedImage Builtin(string name, string key) =>
        new([name], "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key))), Started, 0, null, [], null, b => b.FromHost());
}
