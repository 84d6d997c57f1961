namespace IsoTest;

/// <summary>
/// What "ready" means for a container. Create the built-in ones with <c>Wait</c>; combine with <c>And</c>.
/// <para>
/// Write your own (as Testcontainers users do with <c>IWaitUntil</c>) by deriving from this class: override
/// <see cref="UntilAsync"/> with one check and <see cref="ToString"/> with what it waits for. IsoTest calls
/// the check again and again (backing off from 1 ms to the backend's probe interval) until it returns true,
/// and fails the start with <see cref="ContainerExitedException"/> when the container exits first or
/// <see cref="WaitTimeoutException"/> (naming <see cref="ToString"/>) when <see cref="Timeout"/> passes.
/// An exception from the check counts as "not yet", except IsoTest's own errors and
/// <see cref="ArgumentException"/>, which end the wait at once.
/// </para>
/// </summary>
public abstract class WaitStrategy
{
    /// <summary>The timeout of a strategy that was not given one.</summary>
    internal static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>For strategies of your own: see the class's remarks.</summary>
    protected WaitStrategy()
    {
    }

    /// <summary>How long to wait before giving up; null means the default (60 s).</summary>
    public TimeSpan? Timeout { get; private protected set; }

    /// <summary>A short description of the condition, used in error messages.</summary>
    public abstract override string ToString();

    /// <summary>A copy of this strategy that gives up after <paramref name="timeout"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is not positive.</exception>
    public WaitStrategy WithTimeout(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero && timeout != System.Threading.Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "A wait timeout must be positive (or Timeout.InfiniteTimeSpan).");
        }

        // Strategies are immutable and hold only immutable state, so a shallow copy is a full one.
        var copy = (WaitStrategy)MemberwiseClone();
        copy.Timeout = timeout;
        return copy;
    }

    /// <summary>
    /// A strategy that holds when this one and <paramref name="other"/> both hold, checked in order.
    /// Each keeps its own timeout; a timeout set on the combination bounds the whole wait.
    /// </summary>
    public WaitStrategy And(WaitStrategy other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Waits.AllWaitStrategy.Combine(this, other);
    }

    /// <summary>Container ports this strategy reaches from the host, which must be published with <c>WithPort</c>.</summary>
    internal virtual IEnumerable<int> PortsUsed => [];

    /// <summary>
    /// One check: true when <paramref name="container"/> is ready. Called repeatedly until it returns true; the
    /// container is running when it is called (use <see cref="IContainer.ExecAsync"/>, <see cref="IContainer.GetEndpoint"/>, the logs).
    /// </summary>
    /// <param name="container">The container being started.</param>
    /// <param name="cancellationToken">Cancelled when the wait ends (timeout, exit or the caller's token).</param>
    protected abstract Task<bool> UntilAsync(IContainer container, CancellationToken cancellationToken);

    /// <summary><see cref="UntilAsync"/>, for the strategies that poll or combine others.</summary>
    internal Task<bool> CheckOnceAsync(IContainer container, CancellationToken cancellationToken) => UntilAsync(container, cancellationToken);

    /// <summary>Completes when the container is ready; throws <see cref="WaitTimeoutException"/> or <see cref="ContainerExitedException"/>.</summary>
    /// <remarks>The built-in strategies wait in their own ways (following the logs, say); a strategy of the user's is polled.</remarks>
    internal virtual Task WaitAsync(IContainer container, TimeProvider timeProvider, CancellationToken cancellationToken) =>
        new Waits.UntilWaitStrategy(this).WaitAsync(container, timeProvider, cancellationToken);
}
