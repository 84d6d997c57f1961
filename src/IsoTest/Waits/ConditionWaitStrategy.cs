namespace IsoTest.Waits;

/// <summary>
/// A wait for one condition, raced against the container's exit (which fails the wait at once)
/// and the timeout (which fails it naming the condition).
/// </summary>
internal abstract class ConditionWaitStrategy : WaitStrategy
{
    /// <summary>How many of the container's last lines an error message carries.</summary>
    internal const int TailLines = 20;

    /// <summary>Completes when the condition holds; records what it saw in <paramref name="attempt"/>.</summary>
    private protected abstract Task UntilMetAsync(WaitAttempt attempt, CancellationToken cancellationToken);

    /// <summary>Whether the condition held before the container exited, judged from its complete output.</summary>
    private protected virtual bool IsMetAfterExit(IContainer container) => false;

    internal sealed override async Task WaitAsync(IContainer container, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(timeProvider);
        cancellationToken.ThrowIfCancellationRequested();

        var timeout = Timeout ?? DefaultTimeout;
        using var timeoutCts = timeout == System.Threading.Timeout.InfiniteTimeSpan
            ? new CancellationTokenSource()
            : new CancellationTokenSource(timeout, timeProvider);
        using var race = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutCts.Token);
        var attempt = new WaitAttempt(container, timeProvider);

        var exited = container.WaitForExitAsync(race.Token);
        var met = UntilMetAsync(attempt, race.Token);
        try
        {
            var first = await Task.WhenAny(met, exited).ConfigureAwait(false);
            if (first == exited && exited.IsCompletedSuccessfully && !met.IsCompletedSuccessfully)
            {
                if (IsMetAfterExit(container))
                {
                    return;
                }

                throw Exited(container, exited.Result);
            }

            try
            {
                await met.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (timeoutCts.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                if (container.ExitCode is { } code)
                {
                    throw Exited(container, code);
                }

                throw new WaitTimeoutException(container.Id, ToString(), timeout, OutputTail(container), attempt.LastResult, attempt.LastError);
            }
            catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested && e.CancellationToken != cancellationToken)
            {
                // Report the caller's token, not the internal one linked to it, as callers compare them.
                throw new OperationCanceledException(e.Message, e, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException && container.ExitCode is { } code)
            {
                // The probe failed because the container is gone (e.g. exec into an exited container):
                // the exit is the cause worth reporting.
                if (IsMetAfterExit(container))
                {
                    return;
                }

                throw Exited(container, code);
            }
        }
        finally
        {
            await race.CancelAsync().ConfigureAwait(false);
            // Stop the probe loop before returning, so nothing runs against a container the caller may now dispose.
            try
            {
                await met.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Its outcome was handled above, or it is the loser of the race.
            }

            // A backend's exit wait may not end promptly on cancellation; observe its outcome without blocking on it.
            _ = exited.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private ContainerExitedException Exited(IContainer container, int exitCode) =>
        new(container.Id, exitCode, container.OomKilled, ToString(), OutputTail(container));

    /// <summary>The container's last lines, or null when it wrote none (or cannot say).</summary>
    internal static string? OutputTail(IContainer container)
    {
        IReadOnlyList<LogLine> logs;
        try
        {
            logs = container.GetLogs();
        }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException or IsoTestException)
        {
            return null;
        }

        if (logs.Count == 0)
        {
            return null;
        }

        return string.Join('\n', logs.Skip(Math.Max(0, logs.Count - TailLines)).Select(l => l.Text));
    }
}
