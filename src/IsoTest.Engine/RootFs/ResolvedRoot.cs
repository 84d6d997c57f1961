namespace IsoTest.Engine.RootFs;

/// <summary>
/// What an image says about running it (the OCI image config's <c>Entrypoint</c>, <c>Cmd</c>, <c>Env</c>,
/// <c>WorkingDir</c>, <c>User</c>): the defaults a spec falls back on, as <c>docker run</c> does.
/// </summary>
internal sealed record ImageConfig(
    IReadOnlyList<string> Entrypoint,
    IReadOnlyList<string> Command,
    IReadOnlyList<string> Environment,
    string? WorkingDirectory,
    string? User);

/// <summary>
/// One container's root filesystem, resolved: the read-only lower directories the agent stacks under the
/// container's private writable layer (topmost first), and the image's config when the root came from one.
/// Everything below the engine (the spec encoding, the user lookup) consumes this, never a
/// <see cref="RootFileSystem"/>, so a new kind of root is one more <see cref="IRootFsProvider"/>.
/// </summary>
internal sealed record ResolvedRoot
{
    public ResolvedRoot(bool isHost, IReadOnlyList<string> lowerDirectories, ImageConfig? config = null)
    {
        if (lowerDirectories.Count == 0 || lowerDirectories.Any(d => !Path.IsPathFullyQualified(d)))
        {
            throw new ArgumentException("A resolved root needs at least one lower directory, each an absolute path.", nameof(lowerDirectories));
        }

        IsHost = isHost;
        LowerDirectories = lowerDirectories;
        Config = config;
    }

    /// <summary>The host's own <c>/</c>: the agent binds it (with its submounts) instead of opening a directory.</summary>
    public bool IsHost { get; }

    /// <summary>The lower directories, topmost first; a file in an earlier one hides the same path in a later one.</summary>
    public IReadOnlyList<string> LowerDirectories { get; }

    /// <summary>The image's run defaults; null for host and directory roots.</summary>
    public ImageConfig? Config { get; }
}
