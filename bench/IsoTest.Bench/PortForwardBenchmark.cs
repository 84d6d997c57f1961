using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace IsoTest.Bench;

/// <summary>
/// The engine's published port against direct loopback, both to the same echo server
/// (<c>busybox nc -ll -p PORT -e cat</c>): bulk throughput and 1-byte round trips.
/// </summary>
internal static class PortForwardBenchmark
{
    private const long TransferBytes = 256L << 20;
    private const double TargetFraction = 0.5;

    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        var busybox = new[] { "/bin/busybox", "/usr/bin/busybox" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("busybox is not installed: apt-get install busybox-static");
        var transfers = options.Quick ? 3 : 7;
        var roundTrips = options.Quick ? 2000 : 10000;
        var loadBefore = Load.Now();
        var started = DateTimeOffset.UtcNow;

        var hostPort = FreePort();
        using var direct = Process.Start(new ProcessStartInfo(busybox, ["nc", "-ll", "-p", hostPort.ToString(CultureInfo.InvariantCulture), "-e", "cat"]) { UseShellExecute = false })
            ?? throw new InvalidOperationException("could not start busybox nc");
        await using var backend = IsoTest.Engine.EngineBackend.Create();
        try
        {
            await using var container = await new ContainerBuilder()
                .FromHost()
                .WithCommand(busybox, "nc", "-ll", "-p", "9000", "-e", "cat")
                .WithPort(9000)
                .WaitFor(Wait.ForPort(9000))
                .WithBackend(backend)
                .StartAsync(cancellationToken);
            var published = container.GetEndpoint(9000);
            var directEndpoint = new IPEndPoint(IPAddress.Loopback, hostPort);
            var forwardedEndpoint = new IPEndPoint(IPAddress.Parse(published.Host), published.Port);
            await WaitConnectAsync(directEndpoint, cancellationToken);

            var directMiBs = new List<double>();
            var forwardedMiBs = new List<double>();
            for (var i = 0; i < transfers; i++)
            {
                directMiBs.Add(await ThroughputAsync(directEndpoint, cancellationToken));
                forwardedMiBs.Add(await ThroughputAsync(forwardedEndpoint, cancellationToken));
                Console.Error.WriteLine($"  portfwd: transfer {i + 1}/{transfers}: direct {directMiBs[^1]:0} MiB/s, published {forwardedMiBs[^1]:0} MiB/s");
            }

            var directUs = await RoundTripsAsync(directEndpoint, roundTrips, cancellationToken);
            var forwardedUs = await RoundTripsAsync(forwardedEndpoint, roundTrips, cancellationToken);

            var fraction = Stats.PairedRatio(forwardedMiBs, directMiBs) ?? 0;
            var s = new StringBuilder();
            s.AppendLine("## portfwd: through the engine's published port vs direct loopback");
            s.AppendLine();
            s.AppendLine(CultureInfo.InvariantCulture,
                $"Echo server `busybox nc -ll -p PORT -e cat`: on the host (direct: client → 127.0.0.1 → nc) and in an engine container (published: client → 127.0.0.1:ephemeral → engine's relay in the bench process → socket made inside the container's netns → nc). Throughput: {TransferBytes >> 20} MiB written and the same read back concurrently on one connection, {transfers} transfers each, alternating; MiB/s of payload. Latency: {roundTrips:N0} round trips of 1 byte on one connection (TCP_NODELAY), microseconds.");
            s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average {loadBefore} before, {Load.Now()} after.");
            s.AppendLine();
            s.AppendLine("| path | throughput median MiB/s | p90 (slowest 10%) | min – max | 1-byte RTT median µs | p90 | min – max | target |");
            s.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
            var d = Summary.Of(directMiBs);
            var f = Summary.Of(forwardedMiBs);
            var dl = Summary.Of(directUs);
            var fl = Summary.Of(forwardedUs);
            s.AppendLine(CultureInfo.InvariantCulture, $"| direct loopback | {Stats.Num(d.Median)} | {Stats.Num(Stats.Percentile(directMiBs, 10))} | {Stats.Num(d.Min)} – {Stats.Num(d.Max)} | {Stats.Cells(dl)} | |");
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| engine published port | {Stats.Num(f.Median)} | {Stats.Num(Stats.Percentile(forwardedMiBs, 10))} | {Stats.Num(f.Min)} – {Stats.Num(f.Max)} | {Stats.Cells(fl)} | ≥ {TargetFraction:P0} of direct: {fraction:P0} (paired) {Stats.Mark(fraction >= TargetFraction)} |");
            return new Section("portfwd", s.ToString());
        }
        finally
        {
            direct.Kill();
            await direct.WaitForExitAsync(CancellationToken.None);
        }
    }

    private static async Task<double> ThroughputAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint, cancellationToken);
        var sw = Stopwatch.StartNew();
        var send = Task.Run(async () =>
        {
            var buffer = new byte[128 * 1024];
            for (long sent = 0; sent < TransferBytes;)
            {
                var n = (int)Math.Min(buffer.Length, TransferBytes - sent);
                sent += await socket.SendAsync(buffer.AsMemory(0, n), cancellationToken);
            }
        }, cancellationToken);
        var receive = new byte[128 * 1024];
        for (long received = 0; received < TransferBytes;)
        {
            var n = await socket.ReceiveAsync(receive, cancellationToken);
            if (n == 0)
            {
                throw new InvalidOperationException($"{endpoint} closed after {received} of {TransferBytes} bytes");
            }

            received += n;
        }

        await send;
        return (TransferBytes / (1024.0 * 1024.0)) / sw.Elapsed.TotalSeconds;
    }

    private static async Task<List<double>> RoundTripsAsync(IPEndPoint endpoint, int count, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint, cancellationToken);
        var one = new byte[1];
        var samples = new List<double>(count);
        for (var i = 0; i < count + 100; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await socket.SendAsync(one, cancellationToken);
            if (await socket.ReceiveAsync(one, cancellationToken) != 1)
            {
                throw new InvalidOperationException($"{endpoint} closed during the round trips");
            }

            // The first 100 warm the path (JIT, the relay's buffers, cat's first read).
            if (i >= 100)
            {
                samples.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }
        }

        return samples;
    }

    private static async Task WaitConnectAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await probe.ConnectAsync(endpoint, cancellationToken);
                return;
            }
            catch (SocketException) when (attempt < 200)
            {
                await Task.Delay(10, cancellationToken);
            }
        }
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
