using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;

namespace IsoTest.Server.Http;

/// <summary>A hijack request as the connection handler parsed it: route, query, headers and body.</summary>
internal sealed record HijackRequest(string Path, IReadOnlyDictionary<string, string> Query, byte[] Body, Version ApiVersion)
{
    public bool Flag(string name) => Query.TryGetValue(name, out var v) && v is "1" or "true" or "True";
}

/// <summary>Writes a hijacked stream's output until it ends; <paramref name="ended"/> fires when the server stops.</summary>
internal delegate Task HijackHandler(Stream output, CancellationToken ended);

/// <summary>
/// Docker's hijacked streams (attach, exec start with <c>Upgrade: tcp</c>), served below Kestrel's HTTP
/// layer, on the connection, because Kestrel cannot serve them as clients use them:
/// <list type="bullet">
/// <item>it will not upgrade a request that has a body, and exec start always has one (<c>{"Detach":false,"Tty":false}</c>);</item>
/// <item>it aborts the whole connection, output included, when the client half-closes, and the docker CLI
/// half-closes right after the upgrade when it has no stdin to send.</item>
/// </list>
/// Only the first request of a connection is looked at (hijacking clients dial a fresh connection), and
/// only a POST that asks for <c>Upgrade</c> on a route <c>route</c> knows; everything else passes to
/// Kestrel untouched. After the <c>101 UPGRADED</c> head the output goes straight to the transport.
/// </summary>
internal sealed class RawHijack(Func<HijackRequest, HijackHandler?> route, RawHijack.Limits limits, CancellationToken serverStopping)
{
    /// <summary>
    /// How long a connection may wait before its first byte (Kestrel's keep-alive timeout: this runs before Kestrel's own
    /// timers), and then for the rest of a hijack request's head and body: a client that stops sending mid-request is cut
    /// off instead of holding the connection for ever.
    /// </summary>
    internal sealed record Limits(TimeSpan FirstByte, TimeSpan Request);

    private const int MaxHeadBytes = 64 * 1024;
    private const int MaxBodyBytes = 1024 * 1024;
    private static readonly byte[] EndOfHead = "\r\n\r\n"u8.ToArray();

    public async Task InvokeAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        var input = connection.Transport.Input;
        ReadResult read;
        long? headLength;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
        deadline.CancelAfter(limits.FirstByte);
        var first = true;
        while (true)
        {
            try
            {
                read = await input.ReadAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                connection.Abort();   // idle, or a head that never ends: nothing to answer
                return;
            }

            if (first)
            {
                first = false;
                deadline.CancelAfter(limits.Request);
            }

            headLength = Find(read.Buffer);
            if (headLength is not null || read.IsCompleted || read.Buffer.Length >= MaxHeadBytes)
            {
                break;
            }

            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);   // examined, not consumed
        }

        var head = headLength is { } n ? Head.Parse(Encoding.Latin1.GetString(read.Buffer.Slice(0, n))) : null;
        if (head is null)
        {
            input.AdvanceTo(read.Buffer.Start, read.Buffer.Start);   // Kestrel reads it all again
            await next(connection).ConfigureAwait(false);
            return;
        }

        input.AdvanceTo(read.Buffer.GetPosition(headLength!.Value));
        var output = connection.Transport.Output;
        deadline.CancelAfter(limits.Request);   // the body gets the whole allowance again: the head may have come slowly but whole
        try
        {
            byte[] body;
            try
            {
                body = await ReadBodyAsync(input, head.ContentLength, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!connection.ConnectionClosed.IsCancellationRequested)
            {
                throw new DockerApiException(StatusCodes.Status408RequestTimeout, $"the request body did not arrive within {limits.Request.TotalSeconds:0} s (Content-Length {head.ContentLength})");
            }

            var request = new HijackRequest(head.Path, head.Query, body, head.ApiVersion);
            var handler = route(request) ?? throw DockerApiException.BadRequest($"{head.Path} cannot be hijacked");
            await WriteAsync(output, $"HTTP/1.1 101 UPGRADED\r\nContent-Type: {StreamFrames.ContentType(head.ApiVersion)}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n{CommonHeaders()}\r\n").ConfigureAwait(false);
            var stream = new TransportStream(output);
            await handler(stream, serverStopping).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DockerApiException or JsonException or IsoTestException)
        {
            var status = e is DockerApiException d ? d.Status : StatusCodes.Status400BadRequest;
            var json = DockerError.Body(e.Message);
            await WriteAsync(output, $"HTTP/1.1 {status} {Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status)}\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\nConnection: close\r\n{CommonHeaders()}\r\n{json}").ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The client went away.
        }
        finally
        {
            await output.CompleteAsync().ConfigureAwait(false);
            await input.CompleteAsync().ConfigureAwait(false);
        }
    }

    private static string CommonHeaders() =>
        $"Api-Version: {ApiVersioning.Format(ApiVersioning.Current)}\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: IsoTest/{ServerInfo.Version} (linux)\r\n";

    private static async Task WriteAsync(PipeWriter output, string text)
    {
        await output.WriteAsync(Encoding.UTF8.GetBytes(text)).ConfigureAwait(false);
    }

    private static long? Find(ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        return reader.TryReadTo(out ReadOnlySequence<byte> _, EndOfHead, advancePastDelimiter: true) ? reader.Consumed : null;
    }

    private static async Task<byte[]> ReadBodyAsync(PipeReader input, int length, CancellationToken cancellationToken)
    {
        if (length == 0)
        {
            return [];
        }

        while (true)
        {
            var read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (read.Buffer.Length >= length)
            {
                var body = read.Buffer.Slice(0, length).ToArray();
                input.AdvanceTo(read.Buffer.GetPosition(length));
                return body;
            }

            if (read.IsCompleted)
            {
                throw DockerApiException.BadRequest($"the request body ended after {read.Buffer.Length} of {length} bytes");
            }

            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    /// <summary>The parts of a request head that decide whether it is ours.</summary>
    private sealed record Head(string Path, Dictionary<string, string> Query, int ContentLength, Version ApiVersion)
    {
        public static Head? Parse(string text)
        {
            var lines = text.Split("\r\n");
            var requestLine = lines[0].Split(' ');
            if (requestLine.Length != 3 || requestLine[0] != "POST"
                || !lines.Skip(1).Any(l => l.StartsWith("Upgrade:", StringComparison.OrdinalIgnoreCase)))
            {
                return null;
            }

            var target = requestLine[1];
            var question = target.IndexOf('?', StringComparison.Ordinal);
            var path = question < 0 ? target : target[..question];
            if (!ApiVersioning.TryStrip(path, out var version, out var rest))
            {
                return null;   // a refused version: Kestrel's pipeline answers with Docker's words
            }

            var query = new Dictionary<string, string>(StringComparer.Ordinal);
            if (question >= 0)
            {
                foreach (var pair in target[(question + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
                {
                    var eq = pair.IndexOf('=', StringComparison.Ordinal);
                    query[Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq])] = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
                }
            }

            var lengthLine = lines.FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
            var length = lengthLine is null ? 0 : int.TryParse(lengthLine["Content-Length:".Length..].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var l) ? l : -1;
            if (length is < 0 or > MaxBodyBytes || lines.Any(h => h.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase)))
            {
                return null;   // not a shape a Docker client sends for a hijack; Kestrel answers it
            }

            return new(rest, query, length, version);
        }
    }

    /// <summary>A write-only stream onto the connection; a write to a client that is gone throws <see cref="IOException"/>.</summary>
    private sealed class TransportStream(PipeWriter output) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var result = await output.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (result.IsCompleted)
            {
                throw new IOException("the client closed the connection");
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async Task FlushAsync(CancellationToken cancellationToken)
        {
            var result = await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCompleted)
            {
                throw new IOException("the client closed the connection");
            }
        }

        public override void Flush() => throw new NotSupportedException("asynchronous only");

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("asynchronous only");
    }
}
