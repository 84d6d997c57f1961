using System.Globalization;
using IsoTest.Engine.Images;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.RootFs;

/// <summary>
/// An image's root: its layers from the engine's store (pulled per the spec's pull policy, else the engine's),
/// stacked topmost first as the overlay's lower dirs, with the image config's defaults. A warm start reads
/// only the manifest and config (two small files); no layer is opened until the agent mounts them.
/// </summary>
internal sealed class ImageRootFs(Func<ImageService> images, ImagePullPolicy policy) : IRootFsProvider
{
    public RootFileSystemKind Kind => RootFileSystemKind.Image;

    /// <summary>ISOTEST_PULL_POLICY (missing, always, never), as Docker's <c>--pull</c>; missing by default.</summary>
    public static ImagePullPolicy PolicyFromEnvironment() =>
        Environment.GetEnvironmentVariable("ISOTEST_PULL_POLICY")?.Trim().ToLowerInvariant() switch
        {
            null or "" or "missing" => ImagePullPolicy.Missing,
            "always" => ImagePullPolicy.Always,
            "never" => ImagePullPolicy.Never,
            var other => throw new BackendUnavailableException($"ISOTEST_PULL_POLICY='{other}' is not missing, always or never."),
        };

    public async ValueTask<ResolvedRoot> ResolveAsync(ContainerSpec spec, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var image = await images().ResolveAsync(spec.RootFileSystem.Source!, spec.PullPolicy ?? policy, spec.PullProgress, cancellationToken).ConfigureAwait(false);
            if (Lease(images().Store, image) is { } lease)
            {
                return ToRoot(image) with { Lease = lease };
            }

            if (attempt == 3)
            {
                throw new ImagePullException(image.Reference.ToString(), "its layers were pruned (isotest image prune) each time between resolving and holding them: try again once the prune is done.");
            }
        }
    }

    /// <summary>
    /// Holds <paramref name="image"/> for a container (<see cref="ImageStore.HoldImage"/>), or null when a prune removed
    /// one of its layers between resolving and holding (then resolve again: it pulls or says what is missing).
    /// </summary>
    internal static IDisposable? Lease(ImageStore store, StoredImage image)
    {
        var lease = store.HoldImage(image);
        if (image.Layers.All(l => Directory.Exists(l.Directory)))
        {
            return lease;
        }

        lease.Dispose();
        return null;
    }

    internal static ResolvedRoot ToRoot(StoredImage image)
    {
        var defaults = image.Config.Config;
        ContainerHealthcheck? healthcheck;
        try
        {
            var h = defaults?.Healthcheck;
            healthcheck = h is null ? null : ContainerHealthcheck.FromImageConfig(h.Test, h.Interval, h.Timeout, h.StartPeriod, h.Retries);
        }
        catch (FormatException e)
        {
            throw new ImagePullException(image.Reference.ToString(), e.Message + ": the image config is malformed.", e);
        }

        var config = new ImageConfig(
            defaults?.Entrypoint ?? [],
            defaults?.Cmd ?? [],
            defaults?.Env ?? [],
            string.IsNullOrEmpty(defaults?.WorkingDir) ? null : defaults.WorkingDir,
            string.IsNullOrEmpty(defaults?.User) ? null : defaults.User)
        {
            ExposedPorts = ExposedTcpPorts(defaults?.ExposedPorts?.Keys),
            Labels = defaults?.Labels ?? [],
            StopSignal = string.IsNullOrEmpty(defaults?.StopSignal)
                ? null
                : Signals.Parse(defaults.StopSignal)
                  ?? throw new ImagePullException(image.Reference.ToString(), $"the image's StopSignal '{defaults.StopSignal}' is not a signal name or number: the image config is malformed."),
            Healthcheck = healthcheck,
        };
        // The config lists layers bottom first; overlayfs takes the topmost first.
        return new ResolvedRoot(isHost: false, [.. image.Layers.Select(l => l.Directory).Reverse()], config);
    }

    /// <summary>"5432/tcp" and "80" (tcp by default) are published; udp and sctp ports are not (the engine forwards TCP only).</summary>
    internal static IReadOnlyList<int> ExposedTcpPorts(IEnumerable<string>? keys) =>
        keys is null
            ? []
            : [.. keys.Select(k => k.Split('/', 2)).Where(p => p.Length == 1 || p[1].Equals("tcp", StringComparison.OrdinalIgnoreCase))
                .Select(p => int.TryParse(p[0], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and < 65536 ? n : 0)
                .Where(n => n > 0).Distinct().Order()];
}

/// <summary>
/// The image in a <c>docker save</c> archive or an OCI layout (<see cref="ContainerBuilder.FromImageArchive"/>):
/// imported into the engine's store once per file and change (path, size, mtime), then run like a pulled image.
/// </summary>
internal sealed class ImageArchiveRootFs(Func<ImageService> images) : IRootFsProvider
{
    private readonly Dictionary<(string Path, long Size, DateTime Mtime), StoredImage> _loaded = [];
    private readonly SemaphoreSlim _gate = new(1, 1);

    public RootFileSystemKind Kind => RootFileSystemKind.ImageArchive;

    public async ValueTask<ResolvedRoot> ResolveAsync(ContainerSpec spec, CancellationToken cancellationToken)
    {
        var path = Path.GetFullPath(spec.RootFileSystem.Source!);
        var key = Directory.Exists(path)
            ? (path, 0L, Directory.GetLastWriteTimeUtc(path))
            : File.Exists(path)
                ? (path, new FileInfo(path).Length, File.GetLastWriteTimeUtc(path))
                : throw new ImagePullException(path, "the image archive does not exist: give the path of a docker save archive or an OCI image layout (directory or tar).");
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // A layer pruned since this archive was imported: import it again.
            IDisposable? lease = null;
            if (!_loaded.TryGetValue(key, out var image) || images().Store.Load(image.Reference, image.ManifestDigest) is null
                || (lease = ImageRootFs.Lease(images().Store, image)) is null)
            {
                var all = await images().ImportAsync(path, cancellationToken).ConfigureAwait(false);
                image = all.Count switch
                {
                    1 => all[0],
                    0 => throw new ImagePullException(path, "the archive holds no image."),
                    _ => throw new ImagePullException(path, $"the archive holds {all.Count} images ({string.Join(", ", all.Select(i => i.Reference))}): FromImageArchive runs one; load it with `isotest load -i` and use FromImage(name)."),
                };
                _loaded[key] = image;
                lease = ImageRootFs.Lease(images().Store, image)
                    ?? throw new ImagePullException(path, "its layers were pruned (isotest image prune) while it was imported: try again once the prune is done.");
            }

            return ImageRootFs.ToRoot(image) with { Lease = lease };
        }
        finally
        {
            _gate.Release();
        }
    }
}
