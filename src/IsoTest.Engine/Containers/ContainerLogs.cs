using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;

namespace IsoTest.Engine.Containers;

/// <summary>
/// A container's output: two sockets read asynchronously (epoll, no thread per stream) into a bounded
/// buffer of timestamped lines, with live followers. When full, the oldest lines go first.
/// </summary>
internal sealed class ContainerLogs
{
    private const int MaxLines = 20_000;
    private readonly Lock _lock = new();
    private readonly Queue<LogLine> _lines = new();
    private readonly List<ChannelWriter<LogLine>> _followers = [];
    private readonly TimeProvider _time;
    private int _openStreams;
    private bool _completed;

    public ContainerLogs(TimeProvider time) => _time = time;

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
        var channel = Channel.CreateUnbounded<LogLine>(new UnboundedChannelOptions { SingleReader = true });
        lock (_lock)
        {
            foreach (var line in _lines)
            {
                channel.Writer.TryWrite(line);
            }

            if (_completed)
            {
                channel.Writer.TryComplete();
            }
            else
            {
                _followers.Add(channel.Writer);
            }
        }

        try
        {
            await foreach (var line in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return line;
            }
        }
        finally
        {
            lock (_lock)
            {
                _followers.Remove(channel.Writer);
            }
        }
    }

    private async Task ReadAsync(Socket socket, LogStream stream)
    {
        var buffer = new byte[16 * 1024];
        var chars = new char[Encoding.UTF8.GetMaxCharCount(buffer.Length)];
        var decoder = Encoding.UTF8.GetDecoder();
        var partial = new StringBuilder();
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                int count = decoder.GetChars(buffer, 0, n, chars, 0);
                int start = 0;
                for (int i = 0; i < count; i++)
                {
                    if (chars[i] == '\n')
                    {
                        partial.Append(chars, start, i - start);
                        Add(stream, partial);
                        start = i + 1;
                    }
                }

                partial.Append(chars, start, count - start);
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
            if (_lines.Count > MaxLines)
            {
                _lines.Dequeue();
            }

            foreach (var follower in _followers)
            {
                follower.TryWrite(line);
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
                follower.TryComplete();
            }

            _followers.Clear();
        }

        Completion.TrySetResult();
    }
}
