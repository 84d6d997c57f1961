using Polly;
using Polly.Retry;

namespace IsoTest.Waits;

/// <summary>A wait that asks a probe again and again, backing off exponentially between attempts.</summary>
internal abstract class PollingWaitStrategy : ConditionWaitStrategy
{
    /// <summary>The first pause between attempts: most servers here start in milliseconds, so start small.</summary>
    internal static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// The longest pause between attempts, which bounds how late a ready container is noticed, unless the
    /// container says otherwise (<see cref="IContainerProbes.MaxProbeInterval"/>: cheaper probes, shorter pauses).
    /// </summary>
    internal static readonly TimeSpan MaxDelay = TimeSpan.FromMilliseconds(50);

    /// <summary>One attempt: true when the condition holds. Records what it saw in <paramref name="attempt"/>.</summary>
    private protected abstract Task<bool> ProbeAsync(WaitAttempt attempt, CancellationToken cancellationToken);

    /// <summary>One probe, on its own (when this strategy is a part of one a user wrote).</summary>
    protected sealed override Task<bool> UntilAsync(IContainer container, CancellationToken cancellationToken) =>
        ProbeAsync(new WaitAttempt(container, TimeProvider.System), cancellationToken);

    private protected sealed override async Task UntilMetAsync(WaitAttempt attempt, CancellationToken cancellationToken)
    {
        var pipeline = CreatePipeline(attempt);
        while (!await pipeline.ExecuteAsync(
            static (state, token) => new ValueTask<bool>(state.Strategy.ProbeAsync(state.Attempt, token)),
            (Strategy: this, Attempt: attempt),
            cancellationToken).ConfigureAwait(false))
        {
            // Only reached if the retry budget (int.MaxValue attempts) ran out; the timeout ends the wait.
        }
    }

    private static ResiliencePipeline<bool> CreatePipeline(WaitAttempt attempt) =>
        new ResiliencePipelineBuilder<bool> { TimeProvider = attempt.TimeProvider }
            .AddRetry(new RetryStrategyOptions<bool>
            {
                ShouldHandle = static args => new ValueTask<bool>(args.Outcome switch
                {
                    { Exception: { } e } => IsTransient(e),
                    { Result: var ready } => !ready,
                }),
                BackoffType = DelayBackoffType.Exponential,
                Delay = FirstDelay,
                MaxDelay = attempt.Container is IContainerProbes probes ? probes.MaxProbeInterval : MaxDelay,
                // Without jitter the delays are 1, 2, 4, ... up to the cap: predictable under a fake clock.
                UseJitter = false,
                MaxRetryAttempts = int.MaxValue,
                OnRetry = args =>
                {
                    if (args.Outcome.Exception is { } e)
                    {
                        attempt.LastError = e;
                        attempt.LastResult = e.Message;
                    }

                    return default;
                },
            })
            .Build();

    /// <summary>
    /// Errors worth another attempt (connection refused, reset, I/O). Cancellation, a wrong argument
    /// (e.g. an undeclared port) and IsoTest's own errors (e.g. a command that cannot be executed)
    /// will not go away by waiting, so they end the wait at once.
    /// </summary>
    private static bool IsTransient(Exception e) =>
        e is not (OperationCanceledException or ArgumentException or IsoTestException or ObjectDisposedException);
}
