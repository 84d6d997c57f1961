using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;

namespace IsoTest.Tests.Fakes;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that reports every timer created on it, so a test advances the
/// clock exactly when the code under test has started waiting (no sleeps, no races).
/// </summary>
internal sealed class TimerLog : TimeProvider
{
    /// <summary>Timers at least this long are timeouts, not pauses between attempts.</summary>
    private static readonly TimeSpan LongTimer = TimeSpan.FromSeconds(1);

    /// <summary>Guards against a hang when the code under test never creates the timer a test expects.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    private readonly Channel<TimeSpan> _shortTimers = Channel.CreateUnbounded<TimeSpan>();

    public FakeTimeProvider Clock { get; } = new();

    public override DateTimeOffset GetUtcNow() => Clock.GetUtcNow();

    public override long GetTimestamp() => Clock.GetTimestamp();

    public override long TimestampFrequency => Clock.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => Clock.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = Clock.CreateTimer(callback, state, dueTime, period);
        if (dueTime > TimeSpan.Zero && dueTime < LongTimer)
        {
            _shortTimers.Writer.TryWrite(dueTime);
        }

        return timer;
    }

    /// <summary>The due time of the next short timer (a pause between attempts) once it has been created.</summary>
    public async Task<TimeSpan> NextPauseAsync() => await _shortTimers.Reader.ReadAsync().AsTask().WaitAsync(HangGuard);

    /// <summary>Lets every pause elapse, one after the other, until <paramref name="task"/> completes; returns the pauses.</summary>
    public async Task<List<TimeSpan>> RunPausesUntilAsync(Task task)
    {
        var pauses = new List<TimeSpan>();
        while (!task.IsCompleted)
        {
            var next = _shortTimers.Reader.ReadAsync().AsTask();
            if (await Task.WhenAny(next, task).WaitAsync(HangGuard) == next)
            {
                pauses.Add(next.Result);
                Clock.Advance(next.Result);
            }
        }

        return pauses;
    }
}
