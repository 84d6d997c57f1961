using System.Diagnostics;

namespace IsoTest.Bench.Peers;

/// <summary>Which root filesystem an engine peer's container runs on.</summary>
internal enum EngineRoot
{
    /// <summary>The host's <c>/</c>, read-only behind a private overlay (<see cref="ContainerBuilder.FromHost"/>).</summary>
    Host,

    /// <summary>A busybox root filesystem in a directory (<see cref="ContainerBuilder.FromDirectory"/>), built for the run.</summary>
    BusyboxDirectory,

    /// <summary>
    /// The Debian image (<see cref="ContainerBuilder.FromImage"/>), loaded once from .ci/images.sh's layout into an image
    /// store of the peer's own: a warm start from the store, layers unpacked long before.
    /// </summary>
    Image,
}

/// <summary>
/// IsoTest's built-in engine, in process, the path a test takes: <see cref="ContainerBuilder.StartAsync"/>
/// (which creates and starts in one step on this engine), wait for the exit, dispose. Variants run the same cycle on a
/// directory root, or without the seccomp filter (what the default filter costs a start).
/// </summary>
internal sealed class IsoTestPeer(EngineRoot root = EngineRoot.Host, bool seccomp = true) : IPeer
{
    private IContainerBackend? _backend;
    private BusyboxRootFs? _rootfs;      // built by this peer (root)
    private string? _imageStore;         // the Image root's store, removed with the peer
    private string? _directory;          // or given to it (the rootless driver runs on its parent's)

    public string Name => "IsoTest engine" + (root switch { EngineRoot.BusyboxDirectory => ", busybox dir", EngineRoot.Image => ", Debian image", _ => "" }) + (seccomp ? "" : ", seccomp off");

    public string Notes => "ContainerBuilder.StartAsync on the in-process EngineBackend; "
        + (root switch
        {
            EngineRoot.Host => "host / read-only behind a private overlay",
            EngineRoot.Image => $"FromImage({DebianImage}) from the engine's store (loaded before the run), its layers as overlay lower dirs",
            _ => "a busybox directory root behind a private overlay",
        })
        + ", private network (lo only)"
        + (seccomp ? "" : "; WithSeccompProfile(Unconfined): the default filter's cost is the difference to the row with it");

    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (root == EngineRoot.BusyboxDirectory)
        {
            _rootfs = await BusyboxRootFs.CreateAsync(cancellationToken);
        }

        var engine = IsoTest.Engine.EngineBackend.Create();
        _backend = engine;
        if (root == EngineRoot.Image)
        {
            var layout = IsoTest.TestSupport.DebianImages.Layout;
            if (!File.Exists(Path.Combine(layout, "index.json")))
            {
                throw new PeerUnavailableException($"no image layout in {layout}: run .ci/images.sh as root");
            }

            // A store of the peer's own: the machine's default store is left as it was.
            _imageStore = Directory.CreateTempSubdirectory("isotest-bench-images-").FullName;
            engine.Images = new Lazy<IsoTest.Engine.Images.ImageService>(() => new IsoTest.Engine.Images.ImageService(new IsoTest.Engine.Images.ImageStore(_imageStore)));
            await engine.LoadImagesAsync(layout, cancellationToken);
        }
    }

    private const string DebianImage = IsoTest.TestSupport.DebianImages.Debian;

    /// <summary>Prepares on an existing directory root (the rootless driver gets the one its parent built as root).</summary>
    public void PrepareOn(string? directory)
    {
        _rootfs = null;
        _directory = directory;
        _backend = IsoTest.Engine.EngineBackend.Create();
    }

    /// <summary>Milliseconds per engine call of each measured cycle, to see where a cycle's time goes.</summary>
    public Dictionary<string, List<double>> Phases { get; } = new()
    {
        ["create + start"] = [], ["wait for exit"] = [], ["dispose"] = [],
    };

    public bool RecordPhases { get; set; }

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var backend = _backend ?? throw new InvalidOperationException("not prepared");
        var t0 = Stopwatch.GetTimestamp();
        var builder = new ContainerBuilder();
        builder = root == EngineRoot.Image ? builder.FromImage(DebianImage)
            : (_rootfs?.Path ?? _directory) is { } directory ? builder.FromDirectory(directory) : builder.FromHost();
        if (!seccomp)
        {
            builder = builder.WithSeccompProfile(SeccompProfile.Unconfined);
        }

        var container = await builder
            .WithCommand("/bin/true")
            .WithMemoryLimit(64L << 20)
            .WithCpuLimit(0.5)
            .WithBackend(backend)
            .StartAsync(cancellationToken);
        var t1 = Stopwatch.GetTimestamp();
        long t2;
        try
        {
            var exitCode = await container.WaitForExitAsync(cancellationToken);
            t2 = Stopwatch.GetTimestamp();
            if (exitCode != 0)
            {
                throw new InvalidOperationException($"/bin/true exited with {exitCode} in container {container.Name}");
            }
        }
        finally
        {
            await container.DisposeAsync();
        }

        var t3 = Stopwatch.GetTimestamp();
        if (RecordPhases)
        {
            Phases["create + start"].Add(Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
            Phases["wait for exit"].Add(Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
            Phases["dispose"].Add(Stopwatch.GetElapsedTime(t2, t3).TotalMilliseconds);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_backend is not null)
        {
            await _backend.DisposeAsync();
            _backend = null;
        }

        _rootfs?.Dispose();
        _rootfs = null;
        if (_imageStore is not null)
        {
            Directory.Delete(_imageStore, recursive: true);
            _imageStore = null;
        }
    }
}
