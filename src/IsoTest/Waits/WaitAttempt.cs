namespace IsoTest.Waits;

/// <summary>What one wait has seen so far, for the error message when it gives up.</summary>
internal sealed class WaitAttempt(IContainer container, TimeProvider timeProvider)
{
    public IContainer Container { get; } = container;

    public TimeProvider TimeProvider { get; } = timeProvider;

    /// <summary>What the last unsuccessful attempt saw, e.g. "connection refused" or "exit code 2".</summary>
    public string? LastResult { get; set; }

    /// <summary>
    /// An HTTP wait saw its port listening inside the container: from then on it only sends requests (a
    /// server that closes and reopens its socket is the request's to notice, as without the probe).
    /// </summary>
    public bool PortSeenListening { get; set; }

    /// <summary>The exception of the last attempt that threw, if any.</summary>
    public Exception? LastError { get; set; }
}
