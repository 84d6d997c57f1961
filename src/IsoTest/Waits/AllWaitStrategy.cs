namespace IsoTest.Waits;

/// <summary>Ready when every strategy holds, checked in order; each keeps its own timeout.</summary>
internal sealed class AllWaitStrategy : WaitStrategy
{
    private AllWaitStrategy(IReadOnlyList<WaitStrategy> strategies)
    {
        Strategies = strategies;
    }

    public IReadOnlyList<WaitStrategy> Strategies { get; }

    internal override IEnumerable<int> PortsUsed => Strategies.SelectMany(s => s.PortsUsed);

    public static AllWaitStrategy Combine(WaitStrategy first, WaitStrategy second) =>
        new([.. Flatten(first), .. Flatten(second)]);

    public override string ToString() => string.Join(" and ", Strategies.Select(s => s.ToString()));

    /// <summary>Every part's check, in order.</summary>
    protected override async Task<bool> UntilAsync(IContainer container, CancellationToken cancellationToken)
    {
        foreach (var strategy in Strategies)
        {
            if (!await strategy.CheckOnceAsync(container, cancellationToken).ConfigureAwait(false))
            {
                return false;
            }
        }

        return true;
    }

    internal override async Task WaitAsync(IContainer container, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        if (Timeout is not { } timeout || timeout == System.Threading.Timeout.InfiniteTimeSpan)
        {
            foreach (var strategy in Strategies)
            {
                await strategy.WaitAsync(container, timeProvider, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        using var overall = new CancellationTokenSource(timeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, overall.Token);
        foreach (var strategy in Strategies)
        {
            try
            {
                await strategy.WaitAsync(container, timeProvider, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (overall.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new WaitTimeoutException(container.Id, strategy.ToString(), timeout, ConditionWaitStrategy.OutputTail(container));
            }
            catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested && e.CancellationToken != cancellationToken)
            {
                throw new OperationCanceledException(e.Message, e, cancellationToken);
            }
        }
    }

    // A combination with its own timeout stays one unit; without one its parts join the new list.
    private static IEnumerable<WaitStrategy> Flatten(WaitStrategy strategy) =>
        strategy is AllWaitStrategy { Timeout: null } all ? all.Strategies : [strategy];
}
