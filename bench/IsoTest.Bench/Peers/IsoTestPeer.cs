namespace IsoTest.Bench.Peers;

/// <summary>IsoTest's built-in engine, in process: the path a test takes.</summary>
internal sealed class IsoTestPeer : IPeer
{
    private static readonly ContainerSpec Spec = new()
    {
        RootFileSystem = RootFileSystem.Host,
        Command = ["/bin/true"],
        Limits = new ResourceLimits(MemoryBytes: 64L << 20, Cpus: 0.5),
    };

    private IContainerBackend? _backend;

    public string Name => "IsoTest engine";

    public string Notes => "in-process EngineBackend; host / read-only behind a private overlay, private network (lo only)";

    public Task PrepareAsync(CancellationToken cancellationToken)
    {
        _backend = IsoTest.Engine.EngineBackend.Create();
        return Task.CompletedTask;
    }

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var backend = _backend ?? throw new InvalidOperationException("not prepared");
        var container = await backend.CreateAsync(Spec, cancellationToken);
        await using (container)
        {
            await container.StartAsync(cancellationToken);
            var exitCode = await container.WaitForExitAsync(cancellationToken);
            if (exitCode != 0)
            {
                throw new InvalidOperationException($"/bin/true exited with {exitCode} in container {container.Name}");
            }
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
