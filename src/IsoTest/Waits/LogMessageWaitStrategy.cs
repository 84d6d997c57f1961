using System.Text.RegularExpressions;

namespace IsoTest.Waits;

/// <summary>Ready when the container has written a line matching a pattern (a number of times). Reacts to lines as they arrive.</summary>
internal sealed class LogMessageWaitStrategy(Regex pattern, int times) : ConditionWaitStrategy
{
    public Regex Pattern { get; } = pattern;

    public int Times { get; } = times;

    public override string ToString() =>
        Times == 1 ? $"a log line matching /{Pattern}/" : $"{Times} log lines matching /{Pattern}/";

    private protected override async Task UntilMetAsync(WaitAttempt attempt, CancellationToken cancellationToken)
    {
        var seen = 0;
        attempt.LastResult = "no matching line yet";
        await foreach (var line in attempt.Container.FollowLogsAsync(cancellationToken).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            if (Pattern.IsMatch(line.Text) && ++seen >= Times)
            {
                return;
            }

            if (seen > 0)
            {
                attempt.LastResult = $"{seen} of {Times} matching lines seen";
            }
        }

        // The stream ends when the container exits, which the exit race reports; until then, nothing to do.
        await Task.Delay(System.Threading.Timeout.InfiniteTimeSpan, attempt.TimeProvider, cancellationToken).ConfigureAwait(false);
    }

    // The exit may win the race before the last lines were read from the stream; the full log decides.
    /// <summary>Whether the message is in the output already.</summary>
    protected override Task<bool> UntilAsync(IContainer container, CancellationToken cancellationToken) =>
        Task.FromResult(IsMetAfterExit(container));

    private protected override bool IsMetAfterExit(IContainer container) =>
        container.GetLogs().Count(l => Pattern.IsMatch(l.Text)) >= Times;
}
