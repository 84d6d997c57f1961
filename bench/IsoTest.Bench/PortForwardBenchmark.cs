using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace IsoTest.Bench;

/// <summary>
/// The engine's published port against direct loopback, both to the same echo server
/// (<c>busybox nc -ll -p PORT -e cat</c>): bulk throughput and 1-byte round trips.
/// </summary>
internal static class PortForwardBenchmark
{
    private const long TransferBytes = 256L << 20;
    private const double TargetFraction = 0.8;   // issue 15: ≥ 80 % of direct throughput, RTT within 2×
    private const double TargetRttRatio = 2.0;

    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        var busybox = new[] { "/bin/busybox", "/usr/bin/busybox" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("busybox is not installed: apt-get install busybox-static");
        var transfers = options.Quick ? 3 : 7;
        var roundTrips = options.Quick ? 2000 : 10000;
        var loadBefore = Load.Now();
        var stealBefore = Steal.Mark();
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

            await using var relay = new HostRelay(directEndpoint, splice: false);
            await using var spliced = new HostRelay(directEndpoint, splice: true);
            var directMiBs = new List<double>();
            var forwardedMiBs = new List<double>();
            var relayMiBs = new List<double>();
            var splicedMiBs = new List<double>();
            for (var i = 0; i < transfers; i++)
            {
                directMiBs.Add(await ThroughputAsync(directEndpoint, cancellationToken));
                forwardedMiBs.Add(await ThroughputAsync(forwardedEndpoint, cancellationToken));
                relayMiBs.Add(await ThroughputAsync(relay.Endpoint, cancellationToken));
                splicedMiBs.Add(await ThroughputAsync(spliced.Endpoint, cancellationToken));
                Console.Error.WriteLine($"  portfwd: transfer {i + 1}/{transfers}: direct {directMiBs[^1]:0} MiB/s, published {forwardedMiBs[^1]:0} MiB/s, host relay {relayMiBs[^1]:0} MiB/s, splice relay {splicedMiBs[^1]:0} MiB/s");
            }

            var directUs = await RoundTripsAsync(directEndpoint, roundTrips, cancellationToken);
            var forwardedUs = await RoundTripsAsync(forwardedEndpoint, roundTrips, cancellationToken);
            var relayUs = await RoundTripsAsync(relay.Endpoint, roundTrips, cancellationToken);
            var splicedUs = await RoundTripsAsync(spliced.Endpoint, roundTrips, cancellationToken);

            var fraction = Stats.PairedRatio(forwardedMiBs, directMiBs) ?? 0;
            var s = new StringBuilder();
            s.AppendLine("## portfwd: through the engine's published port vs direct loopback");
            s.AppendLine();
            s.AppendLine(CultureInfo.InvariantCulture,
                $"Echo server `busybox nc -ll -p PORT -e cat`: on the host (direct: client → 127.0.0.1 → nc) and in an engine container (published: client → 127.0.0.1:ephemeral → engine's relay in the bench process → socket made inside the container's netns → nc). Throughput: {TransferBytes >> 20} MiB written and the same read back concurrently on one connection, {transfers} transfers each, alternating; MiB/s of payload. Latency: {roundTrips:N0} round trips of 1 byte on one connection (TCP_NODELAY), microseconds.");
            s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average {loadBefore} before, {Load.Now()} after; CPU steal {Steal.Since(stealBefore)}.");
            s.AppendLine();
            s.AppendLine("| path | throughput median MiB/s | p90 (slowest 10%) | min – max | 1-byte RTT median µs | p90 | min – max | target |");
            s.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
            var d = Summary.Of(directMiBs);
            var f = Summary.Of(forwardedMiBs);
            var dl = Summary.Of(directUs);
            var fl = Summary.Of(forwardedUs);
            s.AppendLine(CultureInfo.InvariantCulture, $"| direct loopback | {Stats.Num(d.Median)} | {Stats.Num(Stats.Percentile(directMiBs, 10))} | {Stats.Num(d.Min)} – {Stats.Num(d.Max)} | {Stats.Cells(dl)} | |");
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| engine published port | {Stats.Num(f.Median)} | {Stats.Num(Stats.Percentile(forwardedMiBs, 10))} | {Stats.Num(f.Min)} – {Stats.Num(f.Max)} | {Stats.Cells(fl)} | ≥ {TargetFraction:P0} of direct: {fraction:P1} (paired) {Stats.Mark(fraction >= TargetFraction)}; RTT ≤ {TargetRttRatio:0}× direct: {fl.Median / dl.Median:0.00}× {Stats.Mark(fl.Median / dl.Median <= TargetRttRatio)} |");
            var r = Summary.Of(relayMiBs);
            var rl = Summary.Of(relayUs);
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| diagnostic: the same receive/send relay loop on the host, no container | {Stats.Num(r.Median)} | {Stats.Num(Stats.Percentile(relayMiBs, 10))} | {Stats.Num(r.Min)} – {Stats.Num(r.Max)} | {Stats.Cells(rl)} | {Stats.PairedRatio(relayMiBs, directMiBs) ?? 0:P1} of direct |");
            var sp = Summary.Of(splicedMiBs);
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| diagnostic: a splice(2) relay on the host (socket → pipe → socket, blocking, one thread per direction), no container | {Stats.Num(sp.Median)} | {Stats.Num(Stats.Percentile(splicedMiBs, 10))} | {Stats.Num(sp.Min)} – {Stats.Num(sp.Max)} | {Stats.Cells(Summary.Of(splicedUs))} | {Stats.PairedRatio(splicedMiBs, directMiBs) ?? 0:P1} of direct |");
            s.AppendLine();
            s.AppendLine("The diagnostic row relays client ↔ host nc through a copy of the engine's relay loop (PortForwarder.PumpAsync: ReceiveAsync/SendAsync with a 128 KiB buffer, one task per direction) in the bench process: when it is as slow as the published port, the cost is the relay's, not the container's network namespace.");
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

    /// <summary>The engine's relay loop (PortForwarder) without a container: 127.0.0.1:ephemeral → <paramref name="target"/>.</summary>
    private sealed class HostRelay : IAsyncDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _accept;

        public HostRelay(IPEndPoint target, bool splice)
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(16);
            Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
            _accept = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    Socket client;
                    try
                    {
                        client = await _listener.AcceptAsync(_stop.Token);
                    }
                    catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
                    {
                        return;
                    }

                    _ = Task.Run(async () =>
                    {
                        using var c = client;
                        using var inside = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                        c.NoDelay = true;
                        try
                        {
                            await inside.ConnectAsync(target);
                            if (splice)
                            {
                                await Task.WhenAll(SplicePump.RunAsync(c, inside), SplicePump.RunAsync(inside, c));
                            }
                            else
                            {
                                await Task.WhenAll(PumpAsync(c, inside), PumpAsync(inside, c));
                            }
                        }
                        catch (Exception e) when (e is SocketException or ObjectDisposedException)
                        {
                        }
                    });
                }
            });
        }

        public IPEndPoint Endpoint { get; }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Dispose();
            await _accept;
            _stop.Dispose();
        }

        private static async Task PumpAsync(Socket from, Socket to)
        {
            var buffer = new byte[128 * 1024];
            while (true)
            {
                var n = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
                if (n == 0)
                {
                    break;
                }

                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
            }

            to.Shutdown(SocketShutdown.Send);
        }
    }

    /// <summary>Zero-copy relay of one direction: splice(2) socket → pipe → socket on a dedicated thread (blocking fds).</summary>
    private static class SplicePump
    {
        private const uint SpliceMove = 1;
        private const int Chunk = 1 << 20;

        public static Task RunAsync(Socket from, Socket to)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var thread = new Thread(() =>
            {
                var pipe = new int[2];
                try
                {
                    if (pipe2(pipe, 0x80000 /* O_CLOEXEC */) != 0)
                    {
                        throw new IOException($"pipe2 failed: errno {Marshal.GetLastPInvokeError()}");
                    }

                    // .NET keeps a socket it used asynchronously O_NONBLOCK whatever Socket.Blocking says: clear it on the fd.
                    var inFd = (int)from.Handle;
                    var outFd = (int)to.Handle;
                    foreach (var fd in new[] { inFd, outFd })
                    {
                        _ = fcntl(fd, 4 /* F_SETFL */, fcntl(fd, 3 /* F_GETFL */, 0) & ~0x800 /* O_NONBLOCK */);
                    }
                    while (true)
                    {
                        var n = splice(inFd, IntPtr.Zero, pipe[1], IntPtr.Zero, Chunk, SpliceMove);
                        if (n <= 0)
                        {
                            break;
                        }

                        while (n > 0)
                        {
                            var m = splice(pipe[0], IntPtr.Zero, outFd, IntPtr.Zero, (nuint)n, SpliceMove);
                            if (m <= 0)
                            {
                                throw new IOException($"splice to socket failed: errno {Marshal.GetLastPInvokeError()}");
                            }

                            n -= m;
                        }
                    }

                    to.Shutdown(SocketShutdown.Send);
                    done.SetResult();
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
                finally
                {
                    foreach (var fd in pipe)
                    {
                        if (fd > 0)
                        {
                            _ = close(fd);
                        }
                    }
                }
            }) { IsBackground = true, Name = "bench-splice" };
            thread.Start();
            return done.Task;
        }

        [DllImport("libc", SetLastError = true)]
        private static extern nint splice(int fdIn, IntPtr offIn, int fdOut, IntPtr offOut, nuint len, uint flags);

        [DllImport("libc", SetLastError = true)]
        private static extern int pipe2(int[] fds, int flags);

        [DllImport("libc")]
        private static extern int close(int fd);

        [DllImport("libc")]
        private static extern int fcntl(int fd, int command, int argument);
    }
}
