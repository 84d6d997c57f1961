namespace IsoTest;

/// <summary>Hands out builders bound to the registered backend and clock. Registered by <c>AddIsoTest</c>.</summary>
public interface IContainerBuilderFactory
{
    /// <summary>A new, empty builder that starts its containers on the registered backend.</summary>
    ContainerBuilder CreateBuilder();
}

internal sealed class ContainerBuilderFactory(IContainerBackend backend, TimeProvider timeProvider) : IContainerBuilderFactory
{
    public ContainerBuilder CreateBuilder() => new ContainerBuilder().WithBackend(backend).WithTimeProvider(timeProvider);
}
