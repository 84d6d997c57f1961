namespace IsoTest;

/// <summary>
/// What "ready" means for a container. Create with <c>Wait</c>; combine with <c>And</c>.
/// </summary>
public abstract class WaitStrategy
{
    /// <summary>The timeout of a strategy that was not given one.</summary>
    internal static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    private protected WaitStrategy()
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

    /// <summary>Completes when the container is ready; throws <see cref="WaitTimeoutException"/> or <see cref="ContainerExitedException"/>.</summary>
    internal abstract Task WaitAsync(IContainer container, TimeProvider timeProvider, CancellationToken cancellationToken);
}
