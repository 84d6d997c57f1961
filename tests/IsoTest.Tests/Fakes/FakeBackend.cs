namespace IsoTest.Tests.Fakes;

/// <summary>A backend that hands out <see cref="FakeContainer"/>s and remembers them.</summary>
internal sealed class FakeBackend : IContainerBackend
{
    public string Name => "fake";

    /// <summary>Lets a test shape each container before the builder starts it.</summary>
    public Action<FakeContainer>? OnCreate { get; set; }

    public List<FakeContainer> Created { get; } = [];

    public bool Disposed { get; private set; }

    public Task<IContainer> CreateAsync(ContainerSpec spec, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var container = new FakeContainer(spec);
        OnCreate?.Invoke(container);
        Created.Add(container);
        return Task.FromResult<IContainer>(container);
    }

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        return ValueTask.CompletedTask;
    }
}
