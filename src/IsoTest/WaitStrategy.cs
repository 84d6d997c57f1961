namespace IsoTest;

/// <summary>
/// What "ready" means for a container. Create with <c>Wait</c>; combine with <c>And</c>.
/// </summary>
public abstract class WaitStrategy
{
    private protected WaitStrategy()
    {
    }

    /// <summary>How long to wait before giving up; null means the default (60 s).</summary>
    public TimeSpan? Timeout { get; private protected init; }

    /// <summary>A short description of the condition, used in error messages.</summary>
    public abstract override string ToString();

    /// <summary>Completes when the container is ready; throws <see cref="WaitTimeoutException"/> or <see cref="ContainerExitedException"/>.</summary>
    internal abstract Task WaitAsync(IContainer container, TimeProvider timeProvider, CancellationToken cancellationToken);
}
