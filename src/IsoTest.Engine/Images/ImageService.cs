namespace IsoTest.Engine.Images;

/// <summary>
/// The engine's images in one place, for the engine, the CLI and the API server: resolve (by pull policy),
/// pull, import, list, remove, prune. One per store root; registry clients are made per registry and kept.
/// </summary>
internal sealed class ImageService : IDisposable
{
    private readonly Dictionary<string, RegistryClient> _clients = new(StringComparer.Ordinal);
    private readonly DockerCredentials _credentials;
    private readonly RegistrySettings _settings;
    private readonly ImageResolver _resolver;

    public ImageService(ImageStore store, DockerCredentials? credentials = null, RegistrySettings? settings = null, Platform? platform = null)
    {
        Store = store;
        _credentials = credentials ?? new DockerCredentials();
        _settings = settings ?? RegistrySettings.FromEnvironment();
        _resolver = new ImageResolver(store, Client, platform);
    }

    public ImageStore Store { get; }

    public Platform Platform => _resolver.Platform;

    /// <summary>The image <paramref name="reference"/> names, pulled when the policy says so.</summary>
    public Task<StoredImage> ResolveAsync(string reference, ImagePullPolicy policy, IProgress<ImagePullProgress>? progress = null, CancellationToken cancellationToken = default) =>
        _resolver.ResolveAsync(Parse(reference), policy, progress, cancellationToken);

    public Task<StoredImage> PullAsync(string reference, IProgress<ImagePullProgress>? progress = null, CancellationToken cancellationToken = default) =>
        _resolver.PullAsync(Parse(reference), progress, cancellationToken);

    /// <summary>Loads a docker save archive or an OCI layout (directory or tar).</summary>
    public Task<IReadOnlyList<StoredImage>> ImportAsync(string path, CancellationToken cancellationToken = default) =>
        new ImageImporter(Store, _resolver).ImportAsync(path, cancellationToken);

    /// <summary>docker import: a root filesystem tar becomes the one-layer image <paramref name="tag"/> with <paramref name="defaults"/>.</summary>
    public Task<StoredImage> ImportRootfsAsync(Stream tar, string tag, ContainerDefaults defaults, CancellationToken cancellationToken = default) =>
        new RootfsImporter(Store, _resolver).ImportAsync(tar, Parse(tag), defaults, cancellationToken);

    /// <summary>The complete image <paramref name="reference"/> names, or null (never pulls).</summary>
    public StoredImage? Find(string reference) =>
        ImageReference.TryParse(reference, out var parsed) ? Store.Find(parsed) : null;

    /// <summary>Gives the image <paramref name="source"/> names a second name; false when the store lacks the source.</summary>
    public bool Tag(string source, string target)
    {
        if (Find(source) is not { } image)
        {
            return false;
        }

        Store.Tag(Parse(target), image.ManifestDigest);
        return true;
    }

    public IReadOnlyList<StoredImage> List() => Store.List();

    /// <summary>Removes a tag; false when the store has no such tag.</summary>
    public bool Remove(string reference) => Store.Untag(Parse(reference));

    public PruneResult Prune() => Store.Prune();

    public void Dispose()
    {
        lock (_clients)
        {
            foreach (var client in _clients.Values)
            {
                client.Dispose();
            }

            _clients.Clear();
        }
    }

    private RegistryClient Client(ImageReference reference)
    {
        lock (_clients)
        {
            if (!_clients.TryGetValue(reference.Registry, out var client))
            {
                client = new RegistryClient(reference.Registry, _credentials, _settings);
                _clients[reference.Registry] = client;
            }

            return client;
        }
    }

    private static ImageReference Parse(string reference) =>
        ImageReference.TryParse(reference, out var parsed)
            ? parsed
            : throw new ImagePullException(reference, ImageReference.Validate(reference) + ".");
}
