using System.Buffers.Binary;
using System.Text;

namespace IsoTest.Server.Http;

/// <summary>
/// Docker's stream framing for a container without a TTY: each chunk is an 8-byte header (stream type
/// 1 stdout / 2 stderr, three zero bytes, the payload's size big-endian) and the payload
/// (<c>application/vnd.docker.multiplexed-stream</c>).
/// </summary>
internal static class StreamFrames
{
    public const string Multiplexed = "application/vnd.docker.multiplexed-stream";
    public const string Raw = "application/vnd.docker.raw-stream";

    /// <summary>The content type for a stream of this API version (multiplexed has its own name from 1.42).</summary>
    public static string ContentType(Version apiVersion) => apiVersion >= new Version(1, 42) ? Multiplexed : Raw;

    public static async Task WriteAsync(Stream output, LogStream stream, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        var header = new byte[8];
        header[0] = stream == LogStream.Stderr ? (byte)2 : (byte)1;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), (uint)payload.Length);
        await output.WriteAsync(header, cancellationToken).ConfigureAwait(false);
        await output.WriteAsync(payload, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A log line as dockerd sends it: the text, a newline, and with <paramref name="timestamps"/> an RFC 3339 time first.</summary>
    public static Task WriteLineAsync(Stream output, LogLine line, bool timestamps, CancellationToken cancellationToken)
    {
        var text = timestamps ? $"{line.Timestamp.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffffff00Z} {line.Text}\n" : line.Text + "\n";
        return WriteAsync(output, line.Stream, Encoding.UTF8.GetBytes(text), cancellationToken);
    }
}
