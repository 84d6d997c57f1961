namespace IsoTest.Engine.RootFs;

/// <summary>One kind of root filesystem (host, directory, image): turns a spec's root into a <see cref="ResolvedRoot"/>.</summary>
internal interface IRootFsProvider
{
    /// <summary>The kind of <see cref="RootFileSystem"/> this provider resolves.</summary>
    RootFileSystemKind Kind { get; }

    /// <summary>
    /// The lower directories (and image config) for <paramref name="spec"/>'s root. Asynchronous because an
    /// image may have to be pulled or unpacked first (per the spec's pull policy, reporting to its progress);
    /// host and directory roots complete at once.
    /// </summary>
    ValueTask<ResolvedRoot> ResolveAsync(ContainerSpec spec, CancellationToken cancellationToken);
}

/// <summary>The host's <c>/</c>, read-only behind the container's private writable layer.</summary>
/// <param name="writers">Rootless: the host ids the containers act as, for the mirror's read-only trees; null as root (no mirror).</param>
internal sealed class HostRootFs(HostWriters? writers = null) : IRootFsProvider
{
    // Once per engine (each engine has its provider): the mount table is read on the first host root, not per start.
    private readonly Lazy<ResolvedRoot> _root = new(() =>
    {
        var submounts = HostMountPlan.ForThisProcess();
        return new(isHost: true, ["/"])
        {
            Submounts = submounts,
            ReadOnlyTrees = writers is null ? [] : HostReadOnlyTrees.For(submounts, writers),
        };
    });

    public RootFileSystemKind Kind => RootFileSystemKind.Host;

    public ValueTask<ResolvedRoot> ResolveAsync(ContainerSpec spec, CancellationToken cancellationToken) => ValueTask.FromResult(_root.Value);
}

/// <summary>A host directory holding a root filesystem (e.g. busybox), read-only behind the container's private writable layer.</summary>
internal sealed class DirectoryRootFs : IRootFsProvider
{
    public RootFileSystemKind Kind => RootFileSystemKind.Directory;

    public ValueTask<ResolvedRoot> ResolveAsync(ContainerSpec spec, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new ResolvedRoot(isHost: false, [Path.GetFullPath(spec.RootFileSystem.Source!)]));
}

/// <summary>The root filesystem kinds this engine can run, one provider each.</summary>
internal sealed class RootFsProviders
{
    private readonly Dictionary<RootFileSystemKind, IRootFsProvider> _providers;

    public RootFsProviders(IEnumerable<IRootFsProvider> providers) => _providers = providers.ToDictionary(p => p.Kind);

    /// <summary>Host and directory roots.</summary>
    public static RootFsProviders Default { get; } = new([new HostRootFs(), new DirectoryRootFs()]);

    /// <summary>The provider for <paramref name="root"/>'s kind.</summary>
    /// <exception cref="BackendUnavailableException">This engine has no provider for that kind.</exception>
    public IRootFsProvider For(RootFileSystem root) =>
        _providers.TryGetValue(root.Kind, out var provider)
            ? provider
            : throw new BackendUnavailableException(
                $"This engine was made without a provider for {root.Kind} roots ('{root.Source}'): use FromHost(), FromDirectory(), FromImage() or FromImageArchive() on the default engine, or the Docker backend (ISOTEST_BACKEND=docker).");
}
