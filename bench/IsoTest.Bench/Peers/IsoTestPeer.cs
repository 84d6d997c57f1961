using System.Diagnostics;

namespace IsoTest.Bench.Peers;

/// <summary>
/// IsoTest's built-in engine, in process, the path a test takes: <see cref="ContainerBuilder.StartAsync"/>
/// (which creates and starts in one step on this engine), wait for the exit, dispose.
/// </summary>
internal sealed class IsoTestPeer : IPeer
{
    private IContainerBackend? _backend;

    public string Name => "IsoTest engine";

    public string Notes => "ContainerBuilder.StartAsync on the in-process EngineBackend; host / read-only behind a private overlay, private network (lo only)";

    public Task PrepareAsync(CancellationToken cancellationToken)
    {
        _backend = IsoTest.Engine.EngineBackend.Create();
        return Task.CompletedTask;
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
        var container = await new ContainerBuilder()
            .FromHost()
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
    }
}
