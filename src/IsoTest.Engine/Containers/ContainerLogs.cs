using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;

namespace IsoTest.Engine.Containers;

/// <summary>
/// A container's output: two sockets read asynchronously (epoll, no thread per stream) into a buffer of
/// timestamped lines, with live followers. Memory is bounded whatever the payload writes:
/// <list type="bullet">
/// <item>a line longer than 16 KiB is split there, as Docker's log drivers do, so an endless line is many lines;</item>
/// <item>the buffer keeps at most <see cref="MaxBufferedBytes"/> (and <see cref="MaxLines"/>): the oldest go first;</item>
/// <item>each follower has a bounded queue; one that falls behind loses lines and is told so by a marker line,
/// instead of the engine holding everything for it.</item>
/// </list>
/// </summary>
internal sealed class ContainerLogs
{
    /// <summary>Docker splits at 16 KiB (its log drivers' message buffer).</summary>
    public const int MaxLineBytes = 16 * 1024;

    /// <summary>Lines kept at most, whatever their size.</summary>
    public const int MaxLines = 20_000;

    /// <summary>Lines a follower may have unread before it starts losing them.</summary>
    public const int FollowerQueueLines = 4096;

    /// <summary>Overrides <see cref="DefaultMaxBufferedBytes"/> (a size such as <c>64m</c>).</summary>
    public const string BufferVariable = "ISOTEST_LOG_BUFFER";

    /// <summary>Default cap of buffered log memory per container: 16 MiB.</summary>
    public const long DefaultMaxBufferedBytes = 16L << 20;

    // What a line costs in memory besides its characters (the LogLine, the string header, the queue slot).
    private const int LineOverheadBytes = 64;

    private static readonly Lazy<long> ConfiguredMaxBufferedBytes = new(() =>
        Environment.GetEnvironmentVariable(BufferVariable) is { Length: > 0 } text && ByteSize.TryParse(text, out var bytes, out _) && bytes > 0
            ? bytes
            : DefaultMaxBufferedBytes);

    private readonly Lock _lock = new();
    private readonly Queue<LogLine> _lines = new();
    private readonly List<Follower> _followers = [];
    private readonly TimeProvider _time;
    private long _bufferedBytes;
    private long _droppedLines;
    private int _openStreams;
    private bool _completed;

    public ContainerLogs(TimeProvider time, long? maxBufferedBytes = null)
    {
        _time = time;
        MaxBufferedBytes = maxBufferedBytes ?? ConfiguredMaxBufferedBytes.Value;
    }

    /// <summary>The cap of buffered log memory (characters are 2 bytes each, plus a per-line overhead).</summary>
    public long MaxBufferedBytes { get; }

    /// <summary>Memory the buffered lines take now, as counted against <see cref="MaxBufferedBytes"/>.</summary>
    public long BufferedBytes
    {
        get
        {
            lock (_lock)
            {
                return _bufferedBytes;
            }
        }
    }

    /// <summary>Lines dropped from the buffer to stay under the caps.</summary>
    public long DroppedLines
    {
        get
        {
            lock (_lock)
            {
                return _droppedLines;
            }
        }
    }

    /// <summary>
    /// Completes when both streams reached EOF. Its continuations run inline, on the thread that read the
    /// last EOF: the only one is the engine's own (it completes the container's exit, which hands off to
    /// the caller asynchronously), so a second thread-pool hop on every exit would buy nothing.
    /// </summary>
    public TaskCompletionSource Completion { get; } = new();

    public void Start(Socket stdout, Socket stderr)
    {
        _openStreams = 2;
        _ = ReadAsync(stdout, LogStream.Stdout);
        _ = ReadAsync(stderr, LogStream.Stderr);
    }

    public IReadOnlyList<LogLine> Snapshot()
    {
        lock (_lock)
        {
            return [.. _lines];
        }
    }

    public string Tail(int count = 20)
    {
        var lines = Snapshot();
        return string.Join('\n', lines.Skip(Math.Max(0, lines.Count - count)).Select(l => l.Text));
    }

    public async IAsyncEnumerable<LogLine> FollowAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // What is buffered now comes first, then live lines: the queue takes the buffer whole (it is bounded
        // already), live lines only while the reader keeps up.
        var follower = new Follower(_time);
        lock (_lock)
        {
            foreach (var line in _lines)
            {
                follower.Backlog.Enqueue(line);
            }

            if (_completed)
            {
                follower.Channel.Writer.TryComplete();
            }
            else
            {
                _followers.Add(follower);
            }
        }

        try
        {
            while (follower.Backlog.TryDequeue(out var old))
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return old;
            }

            await foreach (var line in follower.Channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return line;
            }
        }
        finally
        {
            lock (_lock)
            {
                _followers.Remove(follower);
            }
        }
    }

    private async Task ReadAsync(Socket socket, LogStream stream)
    {
        var buffer = new byte[16 * 1024];
        var chars = new char[Encoding.UTF8.GetMaxCharCount(buffer.Length)];
        var decoder = Encoding.UTF8.GetDecoder();
        var partial = new StringBuilder();
        var partialBytes = 0;
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                var at = 0;
                while (at < n)
                {
                    var rest = buffer.AsSpan(at, n - at);
                    var newline = rest.IndexOf((byte)'\n');

                    // A line ends at its newline, or after 16 KiB of bytes once a byte beyond is seen (so a line of exactly
                    // 16 KiB and its newline stay one line). A multi-byte character cut there is finished by the next line:
                    // the decoder keeps its state.
                    var room = MaxLineBytes - partialBytes;
                    int take;
                    var skip = 0;
                    bool ends;
                    if (newline >= 0 && newline <= room)
                    {
                        (take, skip, ends) = (newline, 1, true);
                    }
                    else if (rest.Length > room)
                    {
                        (take, ends) = (room, true);
                    }
                    else
                    {
                        (take, ends) = (rest.Length, false);
                    }

                    var count = decoder.GetChars(buffer, at, take, chars, 0, flush: false);
                    partial.Append(chars, 0, count);
                    partialBytes += take;
                    at += take + skip;
                    if (ends)
                    {
                        Add(stream, partial);
                        partialBytes = 0;
                    }
                }
            }
        }
        catch (SocketException)
        {
            // The peer vanished abruptly; what was read stays.
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            var count = decoder.GetChars([], 0, 0, chars, 0, flush: true);
            partial.Append(chars, 0, count);
            if (partial.Length > 0)
            {
                Add(stream, partial);
            }

            socket.Dispose();
            if (Interlocked.Decrement(ref _openStreams) == 0)
            {
                Complete();
            }
        }
    }

    private static long Cost(LogLine line) => ((long)line.Text.Length * 2) + LineOverheadBytes;

    private void Add(LogStream stream, StringBuilder text)
    {
        if (text.Length > 0 && text[^1] == '\r')
        {
            text.Length--;
        }

        var line = new LogLine(_time.GetUtcNow(), stream, text.ToString());
        text.Clear();
        lock (_lock)
        {
            _lines.Enqueue(line);
            _bufferedBytes += Cost(line);
            while (_lines.Count > 1 && (_lines.Count > MaxLines || _bufferedBytes > MaxBufferedBytes))
            {
                _bufferedBytes -= Cost(_lines.Dequeue());
                _droppedLines++;
            }

            foreach (var follower in _followers)
            {
                follower.Offer(line);
            }
        }
    }

    private void Complete()
    {
        lock (_lock)
        {
            _completed = true;
            foreach (var follower in _followers)
            {
                follower.Finish();
            }

            _followers.Clear();
        }

        Completion.TrySetResult();
    }

    /// <summary>One reader of the live lines: a bounded queue, and how many lines it lost since it last kept up.</summary>
    private sealed class Follower(TimeProvider time)
    {
        private long _missed;
        private LogStream _missedStream;

        public Queue<LogLine> Backlog { get; } = new();

        // One slot more than a follower may have unread, so the marker that ends a lossy stream always fits.
        public Channel<LogLine> Channel { get; } = System.Threading.Channels.Channel.CreateBounded<LogLine>(
            new BoundedChannelOptions(FollowerQueueLines + 1) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });

        // Under the logs' lock; never waits. A reader FollowerQueueLines behind loses lines; when it has room again
        // (or the stream ends) a marker says how many.
        public void Offer(LogLine line)
        {
            if (_missed > 0 && Channel.Reader.Count < FollowerQueueLines)
            {
                Channel.Writer.TryWrite(Marker());
                _missed = 0;
            }

            if (Channel.Reader.Count >= FollowerQueueLines)
            {
                if (_missed++ == 0)
                {
                    _missedStream = line.Stream;
                }

                return;
            }

            Channel.Writer.TryWrite(line);
        }

        public void Finish()
        {
            if (_missed > 0)
            {
                Channel.Writer.TryWrite(Marker());
            }

            Channel.Writer.TryComplete();
        }

        private LogLine Marker() =>
            new(time.GetUtcNow(), _missedStream, $"[isotest: {_missed} log line(s) dropped here: this reader fell {FollowerQueueLines} lines behind the container]");
    }
}
