using System.Diagnostics;

namespace IsoTest.Bench.Peers;

/// <summary>Which root filesystem an engine peer's container runs on.</summary>
internal enum EngineRoot
{
    /// <summary>The host's <c>/</c>, read-only behind a private overlay (<see cref="ContainerBuilder.FromHost"/>).</summary>
    Host,

    /// <summary>A busybox root filesystem in a directory (<see cref="ContainerBuilder.FromDirectory"/>), built for the run.</summary>
    BusyboxDirectory,
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
    private string? _directory;          // or given to it (the rootless driver runs on its parent's)

    public string Name => "IsoTest engine" + (root == EngineRoot.BusyboxDirectory ? ", busybox dir" : "") + (seccomp ? "" : ", seccomp off");

    public string Notes => "ContainerBuilder.StartAsync on the in-process EngineBackend; "
        + (root == EngineRoot.Host ? "host / read-only behind a private overlay" : "a busybox directory root behind a private overlay")
        + ", private network (lo only)"
        + (seccomp ? "" : "; WithSeccompProfile(Unconfined): the default filter's cost is the difference to the row with it");

    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (root == EngineRoot.BusyboxDirectory)
        {
            _rootfs = await BusyboxRootFs.CreateAsync(cancellationToken);
        }

        _backend = IsoTest.Engine.EngineBackend.Create();
    }

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
        builder = (_rootfs?.Path ?? _directory) is { } directory ? builder.FromDirectory(directory) : builder.FromHost();
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
    }
}
