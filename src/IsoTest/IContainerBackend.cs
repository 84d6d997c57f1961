namespace IsoTest;

/// <summary>
/// Something that runs containers: the built-in Linux engine or a Docker Engine.
/// Test code never depends on which one it is.
/// </summary>
public interface IContainerBackend : IAsyncDisposable
{
    /// <summary>Short name: <c>engine</c> or <c>docker</c>.</summary>
    string Name { get; }

    /// <summary>Creates a container from a validated spec without starting its command.</summary>
    /// <exception cref="ContainerStartException">The container could not be created; nothing is left behind.</exception>
    Task<IContainer> CreateAsync(ContainerSpec spec, CancellationToken cancellationToken = default);
}

/// <summary>
/// Readiness probes that only a backend can answer cheaply (inside the container's network
/// namespace, inside its root filesystem). Wait strategies use them when the container offers them.
/// </summary>
public interface IContainerProbes
{
    /// <summary>True when something accepts TCP connections on 127.0.0.1:<paramref name="port"/> inside the container.</summary>
    Task<bool> IsPortOpenAsync(int port, CancellationToken cancellationToken);

    /// <summary>True when <paramref name="path"/> exists inside the container.</summary>
    Task<bool> FileExistsAsync(string path, CancellationToken cancellationToken);

    /// <summary>
    /// The longest pause a polling wait makes between two probes of this container: it bounds how late
    /// a ready container is noticed, and is traded against what one probe costs on this backend.
    /// </summary>
    TimeSpan MaxProbeInterval { get; }

    /// <summary>
    /// True when <see cref="IsPortOpenAsync"/> costs less than a request through the published port (the engine:
    /// one message to its agent). An HTTP wait then asks it until the port listens inside, so it sends no request
    /// that can only fail; false where the probe is an exec (Docker), which costs more than the request it saves.
    /// </summary>
    bool PortProbeIsCheap { get; }
}

/// <summary>
/// A backend that creates and starts a container in one step, faster than <c>CreateAsync</c> then
/// <c>StartAsync</c>: the built-in engine hands its agent the command together with the set-up, so no
/// round trip through the engine separates them. <see cref="ContainerBuilder.StartAsync"/> uses it
/// when the backend offers it.
/// </summary>
public interface ICreateStartedBackend
{
    /// <summary>Creates the container and starts its command.</summary>
    /// <exception cref="ContainerStartException">It could not be created or started; nothing is left behind.</exception>
    Task<IContainer> CreateStartedAsync(ContainerSpec spec, CancellationToken cancellationToken);
}
