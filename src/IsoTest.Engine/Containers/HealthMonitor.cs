namespace IsoTest.Engine.Containers;

/// <summary>
/// Runs an image's healthcheck the way dockerd does: the first check one interval after the container
/// started, then one interval after each check ends; a check that exits non-zero or outlives its timeout
/// fails; failures inside the start period do not count, a pass always makes it healthy; retries failures
/// in a row make it unhealthy (and checks go on, as Docker's do, so it can become healthy again).
/// Started on the first question about the container's health, with its clock anchored at the start, so a
/// container nobody asks about pays no execs.
/// </summary>
internal sealed class HealthMonitor : IDisposable
{
    private const int MaxOutput = 4096;

    private readonly ContainerHealthcheck _check;
    private readonly Func<IReadOnlyList<string>, CancellationToken, Task<ExecResult>> _exec;
    private readonly TimeProvider _time;
    private readonly long _startedAt;
    private readonly CancellationTokenSource _stop = new();
    private volatile ContainerHealth _health = new(HealthStatus.Starting);

    public HealthMonitor(ContainerHealthcheck check, Func<IReadOnlyList<string>, CancellationToken, Task<ExecResult>> exec, long startedAt, Task exited, TimeProvider time)
    {
        _check = check;
        _exec = exec;
        _time = time;
        _startedAt = startedAt;
        _ = exited.ContinueWith(_ => Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _ = Task.Run(LoopAsync);
    }

    public ContainerHealth Health => _health;

    public void Dispose()
    {
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task LoopAsync()
    {
        var token = _stop.Token;
        try
        {
            var next = _startedAt + (long)(_check.Interval.TotalSeconds * _time.TimestampFrequency);
            while (!token.IsCancellationRequested)
            {
                var wait = _time.GetElapsedTime(_time.GetTimestamp(), next);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, _time, token).ConfigureAwait(false);
                }

                var (passed, output) = await CheckOnceAsync(token).ConfigureAwait(false);
                var inStartPeriod = _time.GetElapsedTime(_startedAt) < _check.StartPeriod;
                var was = _health;
                _health = passed
                    ? new ContainerHealth(HealthStatus.Healthy, 0, output)
                    : inStartPeriod
                        ? was with { LastOutput = output }
                        : (was.FailingStreak + 1) is var streak && streak >= _check.Retries
                            ? new ContainerHealth(HealthStatus.Unhealthy, streak, output)
                            : was with { FailingStreak = streak, LastOutput = output };
                next = _time.GetTimestamp() + (long)(_check.Interval.TotalSeconds * _time.TimestampFrequency);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        finally
        {
            _stop.Dispose();
        }
    }

    private async Task<(bool Passed, string Output)> CheckOnceAsync(CancellationToken token)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
        timeout.CancelAfter(_check.Timeout);
        try
        {
            var result = await _exec(_check.Command, timeout.Token).WaitAsync(_check.Timeout, _time, token).ConfigureAwait(false);
            var output = (result.Stdout + result.Stderr).Trim();
            return (result.ExitCode == 0, output.Length > MaxOutput ? output[^MaxOutput..] : output);
        }
        catch (TimeoutException)
        {
            return (false, $"the check ran longer than its timeout ({_check.Timeout.TotalSeconds:0.###} s)");
        }
        catch (OperationCanceledException) when (!token.IsCancellationRequested)
        {
            return (false, $"the check ran longer than its timeout ({_check.Timeout.TotalSeconds:0.###} s)");
        }
        catch (Exception e) when (e is IsoTestException or InvalidOperationException)
        {
            // The program is missing or cannot run: a failed check, as dockerd counts it.
            return (false, e.Message);
        }
    }
}
