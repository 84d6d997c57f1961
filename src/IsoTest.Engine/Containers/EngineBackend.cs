using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Native;
using IsoTest.Engine.Networking;
using IsoTest.Engine.Process;
using IsoTest.Engine.RootFs;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine;

/// <summary>
/// The built-in Linux engine: runs each container directly on the kernel (namespaces, cgroups, a
/// private root filesystem view) through a small native init agent. Linux only.
/// </summary>
public sealed class EngineBackend : IContainerBackend, ICreateStartedBackend, INetworkBackend
{
    private static readonly Lock SweepLock = new();
    private static int s_kernelNoted;
    private readonly Containers.EngineState _state;
    private readonly Containers.EngineContext _context;
    private int _disposed;

    /// <summary>Creates an engine with the machine's defaults (cgroup version detected, state under /run/isotest or $XDG_RUNTIME_DIR).</summary>
    /// <exception cref="BackendUnavailableException">Not Linux, the init agent is missing, or (rootless) user namespaces are forbidden.</exception>
    public EngineBackend()
        : this(null, null, null)
    {
    }

    /// <param name="agentPath">The init agent (default: <see cref="AgentLocator"/>'s).</param>
    /// <param name="stateRoot">The state root (default: <see cref="Containers.EngineState.DefaultRoot"/>).</param>
    /// <param name="cgroups">The cgroup driver (default: detected).</param>
    /// <param name="network">The network driver (default: namespaces).</param>
    /// <param name="subordinateIdFiles">Rootless: where the ranges are read (default: /etc/subuid, /etc/subgid); tests name empty files to run without.</param>
    internal EngineBackend(string? agentPath, string? stateRoot, ICgroupDriver? cgroups, INetworkDriver? network = null, (string SubUid, string SubGid)? subordinateIdFiles = null)
    {
        EngineRequirements.Check();
        AgentPath = agentPath ?? AgentLocator.Find();
        var cgroupDriver = cgroups ?? CgroupDriver.Detect() ?? new UnavailableCgroupDriver(CgroupDriver.DefaultRoot);
        var isRoot = Credentials.IsRoot;
        Action<string> log = message => Console.Error.WriteLine($"isotest: {message}");
        SubordinateIdLookup? lookup = null;
        if (!isRoot)
        {
            lookup = subordinateIdFiles is { } files ? SubordinateIds.Find(files.SubUid, files.SubGid) : SubordinateIds.ForThisProcess();
            SubordinateIds.SayOnce(lookup, log);
            SubordinateIdsMissing = lookup.Missing;
        }

        var ranges = lookup?.Ids;
        // Checked before the sweep: a planted root (a symlink, another user's directory) must not be swept.
        var root = Containers.EngineState.EnsureRoot(stateRoot ?? Containers.EngineState.DefaultRoot());
        Sweep(root, cgroupDriver);
        _state = Containers.EngineState.Acquire(root);
        _context = new Containers.EngineContext(
            EngineLoop.Shared,
            AgentPath,
            Fd.OpenDevNull(),
            cgroupDriver,
            network ?? new NamespaceNetworkDriver(isRoot, _state.Directory,
                () => new NetworkHolder(EngineLoop.Shared, AgentPath, ranges is null ? null : IdMaps.ForHolder(Credentials.EffectiveUid, Credentials.EffectiveGid, ranges))),
            new RootFsProviders([new HostRootFs(isRoot ? null : HostWriters.ForCaller(ranges)), new DirectoryRootFs(), new ImageRootFs(() => Images.Value, ImageRootFs.PolicyFromEnvironment()), new ImageArchiveRootFs(() => Images.Value)]),
            _state,
            new Containers.ContainerRegistry(),
            isRoot,
            TimeProvider.System,
            log)
        {
            Ranges = ranges,
            // Rootless, with ranges or without: the containers' user namespaces are made once per maps and shared, so the
            // host mirrors and network namespaces can be made ahead in them.
            UserNamespaces = isRoot ? null : new Namespaces.SharedUserNamespaces(EngineLoop.Shared, AgentPath),
            HostMirrors = isRoot ? null : new RootFs.HostMirrors(EngineLoop.Shared, AgentPath, TimeProvider.System, Path.Combine(_state.Directory, "stage")),
            UserNetns = isRoot ? null : new UserNetnsPools(EngineLoop.Shared, AgentPath),
        };

        if (EngineRequirements.RootlessKernelNote(isRoot, Environment.OSVersion.Version) is { } note && Interlocked.Exchange(ref s_kernelNoted, 1) == 0)
        {
            _context.Log(note);
        }

        // Tests that forget to dispose must not leave cgroups behind; processes die with us anyway (PDEATHSIG).
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    /// <summary>Creates an engine with the machine's defaults.</summary>
    public static EngineBackend Create() => new();

    /// <inheritdoc/>
    public string Name => "engine";

    internal string AgentPath { get; }

    internal ICgroupDriver Cgroups => _context.Cgroups;

    internal bool IsRoot => _context.IsRoot;

    /// <summary>Rootless without subordinate ranges: the line that said so (and how to add them); null otherwise.</summary>
    internal string? SubordinateIdsMissing { get; }

    internal INetworkDriver Network => _context.Network;

    internal string EngineId => _state.EngineId;

    internal string StateDirectory => _state.Directory;

    /// <summary>The engine's image store and registry client, made on the first image a container names.</summary>
    internal Lazy<IsoTest.Engine.Images.ImageService> Images { get; set; } =
        new(() => new IsoTest.Engine.Images.ImageService(new IsoTest.Engine.Images.ImageStore(IsoTest.Engine.Images.ImageStore.DefaultRoot())));

    /// <summary>Network namespaces made ahead of time as root (see <see cref="NetnsPool"/>); started on first use.</summary>
    internal NetnsPool? Netns => (_context.Network as NamespaceNetworkDriver)?.Pool;

    /// <summary>Rootless with subordinate ranges: network namespaces made ahead in the shared user namespaces (null otherwise).</summary>
    internal UserNetnsPools? UserNetns => _context.UserNetns;

    internal int LiveContainers => _context.Registry.Count;

    /// <summary>Commands run as PID 1 of their own PID namespace, as under dockerd (the API server's engine); containers made afterwards.</summary>
    internal bool CommandIsPid1
    {
        get => _context.CommandIsPid1;
        set => _context.CommandIsPid1 = value;
    }

    /// <summary>The container with this id, unique id prefix or name (the Docker API's lookup).</summary>
    internal IContainer? Find(string idOrName) => _context.Registry.TryFind(idOrName, out var container) ? container : null;

    Task<INetwork> INetworkBackend.CreateNetworkAsync(NetworkSpec spec, CancellationToken cancellationToken) =>
        CreateNetworkAsync(spec, EngineNetworks.DefaultPrefixLength, cancellationToken);

    /// <summary>Creates a network; <paramref name="prefixLength"/> sets its size (tests exhaust small ones).</summary>
    internal Task<INetwork> CreateNetworkAsync(NetworkSpec spec, int prefixLength, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(_context.Network.CreateNetwork(spec, prefixLength));
    }

    /// <summary>
    /// Loads the images in <paramref name="path"/> (a <c>docker save</c> archive, or an OCI image layout as a
    /// directory or tar) into this engine's image store, as <c>isotest load -i</c> and <c>docker load</c> do, so
    /// <see cref="ContainerBuilder.FromImage"/> finds them by the names the archive gives them without a registry.
    /// Layers already in the store are not unpacked again.
    /// </summary>
    /// <returns>The references loaded, normalised (<c>docker.io/library/name:tag</c>).</returns>
    /// <exception cref="ImagePullException">The archive is missing, malformed or incomplete; nothing of it is tagged.</exception>
    public async Task<IReadOnlyList<string>> LoadImagesAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var images = await Images.Value.ImportAsync(path, cancellationToken).ConfigureAwait(false);
        return [.. images.Select(i => i.Reference.ToString())];
    }

    /// <inheritdoc/>
    public Task<IContainer> CreateAsync(ContainerSpec spec, CancellationToken cancellationToken = default) =>
        CreateAsync(spec, start: false, cancellationToken);

    Task<IContainer> ICreateStartedBackend.CreateStartedAsync(ContainerSpec spec, CancellationToken cancellationToken) =>
        CreateAsync(spec, start: true, cancellationToken);

    private async Task<IContainer> CreateAsync(ContainerSpec spec, bool start, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var container = await Containers.EngineContainer.PrepareAsync(_context, spec, cancellationToken).ConfigureAwait(false);
        using (_context.BeginCreate(spec))
        {
            await container.CreateAsync(start, cancellationToken).ConfigureAwait(false);
        }

        return container;
    }

    /// <summary>Removes every container, this engine's cgroups and its state directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        await Task.WhenAll(_context.Registry.All.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
        await _context.Network.RemoveNetworksAsync().ConfigureAwait(false);
        try
        {
            Cgroups.RemoveEngineGroup(_state.EngineId);
        }
        catch (IOException e)
        {
            // Processes that would not leave for half a minute; the state directory still goes. The group is
            // then nobody's: a later engine's sweep removes it once it is empty (Sweep, RemoveIfUnowned).
            _context.Log($"could not remove this engine's cgroups: {e.Message}");
        }

        _context.Network.Dispose();
        _context.HostMirrors?.Dispose();
        _context.UserNetns?.Dispose();
        _context.UserNamespaces?.Dispose();
        // The ended containers' mount namespaces this process still holds (one queue for all engines) are closed first.
        await Namespaces.MountNamespaceRelease.DrainAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        if (Images.IsValueCreated)
        {
            Images.Value.Dispose();
        }

        _state.Dispose();
        _context.DevNull.Dispose();
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        try
        {
            DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // Best effort at exit; the next engine's sweep removes what is left.
        }
    }

    /// <summary>
    /// At every engine start: remove what dead engines left behind (cheap when there is nothing). An engine proven
    /// dead — its state directory in our state root with its lock free — is swept whole, its processes killed. An
    /// engine group with no state directory here may be a live engine's whose state lives elsewhere (another user's,
    /// another ISOTEST_STATE_DIR), or one whose owner ended while a group was still busy (its rmdir gave up, its
    /// state went): it is removed only when no engine holds it and no process is in it (RemoveIfUnowned).
    /// Best effort: a leftover that cannot be removed must not stop this engine from starting.
    /// </summary>
    private static void Sweep(string root, ICgroupDriver cgroups)
    {
        lock (SweepLock)
        {
            foreach (var dead in Containers.EngineState.DeadEngines(root))
            {
                try
                {
                    cgroups.RemoveEngineGroup(dead);
                    Containers.EngineState.RemoveDirectory(root, dead);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Console.Error.WriteLine($"isotest: could not sweep the leftovers of dead engine {dead}: {e.Message}");
                }
            }

            foreach (var engineId in cgroups.ListEngineGroups().Where(Containers.EngineState.IsEngineId))
            {
                cgroups.RemoveIfUnowned(engineId);
            }
        }
    }
}
