using IsoTest.Engine.Images;

namespace IsoTest.Engine.RootFs;

/// <summary>
/// An image's root: its layers from the engine's store (pulled per the pull policy), stacked topmost
/// first as the overlay's lower dirs, with the image config's defaults. A warm start reads only the
/// manifest and config (two small files); no layer is opened until the agent mounts them.
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

    public async ValueTask<ResolvedRoot> ResolveAsync(RootFileSystem root, CancellationToken cancellationToken)
    {
        var image = await images().ResolveAsync(root.Source!, policy, null, cancellationToken).ConfigureAwait(false);
        return ToRoot(image);
    }

    internal static ResolvedRoot ToRoot(StoredImage image)
    {
        var defaults = image.Config.Config;
        var config = new ImageConfig(
            defaults?.Entrypoint ?? [],
            defaults?.Cmd ?? [],
            defaults?.Env ?? [],
            string.IsNullOrEmpty(defaults?.WorkingDir) ? null : defaults.WorkingDir,
            string.IsNullOrEmpty(defaults?.User) ? null : defaults.User);
        // The config lists layers bottom first; overlayfs takes the topmost first.
        return new ResolvedRoot(isHost: false, [.. image.Layers.Select(l => l.Directory).Reverse()], config);
    }
}
