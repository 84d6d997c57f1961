namespace IsoTest.Waits;

/// <summary>A strategy written by a user (its UntilAsync), polled like the built-in probes: same back-off, exit and timeout handling.</summary>
internal sealed class UntilWaitStrategy : PollingWaitStrategy
{
    private readonly WaitStrategy _user;

    public UntilWaitStrategy(WaitStrategy user)
    {
        _user = user;
        Timeout = user.Timeout;
    }

    public override string ToString() => _user.ToString();

    private protected override async Task<bool> ProbeAsync(WaitAttempt attempt, CancellationToken cancellationToken)
    {
        var ready = await _user.CheckOnceAsync(attempt.Container, cancellationToken).ConfigureAwait(false);
        if (!ready)
        {
            attempt.LastResult = "not ready yet";
        }

        return ready;
    }
}
