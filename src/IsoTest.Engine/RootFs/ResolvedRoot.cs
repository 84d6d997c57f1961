namespace IsoTest.Engine.RootFs;

/// <summary>
/// What an image says about running it (the OCI image config's <c>Entrypoint</c>, <c>Cmd</c>, <c>Env</c>,
/// <c>WorkingDir</c>, <c>User</c>, <c>ExposedPorts</c>, <c>Labels</c>, <c>StopSignal</c>, <c>Healthcheck</c>):
/// the defaults a spec falls back on, as <c>docker run</c> does.
/// </summary>
internal sealed record ImageConfig(
    IReadOnlyList<string> Entrypoint,
    IReadOnlyList<string> Command,
    IReadOnlyList<string> Environment,
    string? WorkingDirectory,
    string? User)
{
    /// <summary>The TCP ports the image exposes; published like the spec's own (Docker's <c>-P</c>, on loopback).</summary>
    public IReadOnlyList<int> ExposedPorts { get; init; } = [];

    /// <summary>The image's labels; the spec's own override them key by key.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>The signal a stop sends first (SIGTERM when the image names none).</summary>
    public int? StopSignal { get; init; }

    /// <summary>The image's healthcheck, null when it has none.</summary>
    public ContainerHealthcheck? Healthcheck { get; init; }

    /// <summary>
    /// <paramref name="spec"/> with what the image adds to it: its labels under the spec's, and its exposed
    /// TCP ports next to the spec's. Entrypoint, Cmd, Env, WorkingDir and User stay defaults the agent
    /// applies (the spec keeps saying what the user asked).
    /// </summary>
    public ContainerSpec ApplyTo(ContainerSpec spec)
    {
        if (Labels.Count == 0 && ExposedPorts.All(spec.Ports.Contains))
        {
            return spec;
        }

        var labels = new Dictionary<string, string>(Labels, StringComparer.Ordinal);
        foreach (var (key, value) in spec.Labels)
        {
            labels[key] = value;
        }

        return spec with { Labels = labels, Ports = [.. spec.Ports, .. ExposedPorts.Where(p => !spec.Ports.Contains(p))] };
    }
}

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

    /// <summary>The host root: the directories with mounts below them, read once per engine (<see cref="HostMountPlan"/>); empty otherwise.</summary>
    public IReadOnlyList<string> Submounts { get; init; } = [];

    /// <summary>
    /// The rootless host root: the entries of <see cref="Submounts"/> that no id of a container may write anything in,
    /// found once per engine (<see cref="HostReadOnlyTrees"/>), which the mirror binds read-only; empty otherwise.
    /// </summary>
    public IReadOnlyList<string> ReadOnlyTrees { get; init; } = [];

    /// <summary>
    /// For an image root, the store's shared hold on the image and its layers (<see cref="Images.ImageStore.HoldImage"/>),
    /// which prune respects in every process. Released when the container is removed (or was never made).
    /// </summary>
    public IDisposable? Lease { get; init; }
}
