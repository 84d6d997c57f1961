using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace IsoTest.Docker;

/// <summary>
/// The container's output as lines, bounded (the oldest go first), readable as a snapshot or
/// followed live. Fed by the demultiplexed log stream of the daemon.
/// </summary>
internal sealed class DockerLogBuffer
{
    private readonly Lock _lock = new();
    private readonly Queue<LogLine> _lines = new();
    private readonly int _capacity;
    private readonly TimeProvider _timeProvider;
    private readonly StringBuilder _partialOut = new();
    private readonly StringBuilder _partialErr = new();
    private long _dropped;
    private bool _completed;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal DockerLogBuffer(int capacity, TimeProvider timeProvider)
    {
        _capacity = capacity;
        _timeProvider = timeProvider;
    }

    /// <summary>Appends decoded text from one stream; complete lines become <see cref="LogLine"/>s.</summary>
    internal void Append(LogStream stream, string text)
    {
        lock (_lock)
        {
            var partial = stream == LogStream.Stdout ? _partialOut : _partialErr;
            partial.Append(text);
            var start = 0;
            var all = partial.ToString();
            int newline;
            while ((newline = all.IndexOf('\n', start)) >= 0)
            {
                AddLine(stream, all[start..newline]);
                start = newline + 1;
            }

            partial.Clear().Append(all, start, all.Length - start);
        }

        Signal();
    }

    /// <summary>No more output: flushes unterminated lines and ends every follower.</summary>
    internal void Complete()
    {
        lock (_lock)
        {
            if (_completed)
            {
                return;
            }

            if (_partialOut.Length > 0)
            {
                AddLine(LogStream.Stdout, _partialOut.ToString());
                _partialOut.Clear();
            }

            if (_partialErr.Length > 0)
            {
                AddLine(LogStream.Stderr, _partialErr.ToString());
                _partialErr.Clear();
            }

            _completed = true;
        }

        Signal();
    }

    internal bool IsCompleted
    {
        get
        {
            lock (_lock)
            {
                return _completed;
            }
        }
    }

    internal IReadOnlyList<LogLine> Snapshot()
    {
        lock (_lock)
        {
            return [.. _lines];
        }
    }

    /// <summary>The last <paramref name="count"/> lines as text, for error messages.</summary>
    internal string? Tail(int count = 20)
    {
        lock (_lock)
        {
            return _lines.Count == 0 ? null : string.Join('\n', _lines.Skip(Math.Max(0, _lines.Count - count)).Select(l => l.Text));
        }
    }

    internal async IAsyncEnumerable<LogLine> FollowAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        long next = 0; // sequence number of the next line to hand out; line i has number _dropped + index
        while (true)
        {
            LogLine[] batch;
            Task changed;
            bool completed;
            lock (_lock)
            {
                next = Math.Max(next, _dropped); // lines dropped while the follower was slow are skipped
                batch = [.. _lines.Skip((int)(next - _dropped))];
                next += batch.Length;
                completed = _completed;
                changed = _changed.Task;
            }

            foreach (var line in batch)
            {
                yield return line;
            }

            if (batch.Length > 0)
            {
                continue;
            }

            if (completed)
            {
                yield break;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void AddLine(LogStream stream, string raw)
    {
        var (timestamp, text) = SplitTimestamp(raw);
        _lines.Enqueue(new LogLine(timestamp ?? _timeProvider.GetUtcNow(), stream, text.TrimEnd('\r')));
        if (_lines.Count > _capacity)
        {
            _lines.Dequeue();
            _dropped++;
        }
    }

    private void Signal()
    {
        TaskCompletionSource old;
        lock (_lock)
        {
            old = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        old.TrySetResult();
    }

    /// <summary>Splits the daemon's <c>timestamps=1</c> prefix (RFC 3339 with nanoseconds, then a space) off a line.</summary>
    internal static (DateTimeOffset? Timestamp, string Text) SplitTimestamp(string raw)
    {
        var space = raw.IndexOf(' ', StringComparison.Ordinal);
        if (space < 20 || space > 40)
        {
            return (null, raw);
        }

        var stamp = raw[..space];
        // .NET parses at most 7 fractional digits; Docker writes 9.
        var dot = stamp.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0)
        {
            var end = dot + 1;
            while (end < stamp.Length && char.IsAsciiDigit(stamp[end]))
            {
                end++;
            }

            var fraction = stamp[(dot + 1)..end];
            stamp = stamp[..(dot + 1)] + (fraction.Length > 7 ? fraction[..7] : fraction) + stamp[end..];
        }

        return DateTimeOffset.TryParse(stamp, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed)
            ? (parsed, raw[(space + 1)..])
            : (null, raw);
    }
}
