using IsoTest.Docker;

namespace IsoTest.Bench.Peers;

/// <summary>IsoTest's own Docker backend (<c>DockerBackend.Create()</c>): the same spec as the engine, on dockerd.</summary>
internal sealed class IsoTestDockerPeer : IPeer
{
    private static readonly ContainerSpec Spec = new ContainerBuilder()
        .FromImage(TestcontainersPeer.Image)
        .WithCommand("/bin/true")
        .WithMemoryLimit(64L << 20)
        .WithCpuLimit(0.5)
        .Build();

    private DockerBackend? _backend;
    private string _apiVersion = "?";

    public string Name => "IsoTest Docker backend";

    public string Notes => $"DockerBackend.Create() (API {_apiVersion}), pull policy Missing; {TestcontainersPeer.Image}, network none, 64 MiB / 0.5 CPU";

    public Task PrepareAsync(CancellationToken cancellationToken)
    {
        _backend = new DockerBackend(new DockerBackendOptions { PullPolicy = ImagePullPolicy.Missing });
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
            _apiVersion = _backend.ApiVersion?.ToString() ?? "?";
            await _backend.DisposeAsync();
            _backend = null;
        }
    }
}
