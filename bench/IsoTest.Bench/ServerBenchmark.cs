using System.Globalization;
using System.Net;
using System.Text;
using IsoTest.Bench.Peers;

namespace IsoTest.Bench;

/// <summary>
/// A server fixture: start <c>busybox httpd</c> with a published port, wait until it answers through
/// that port, make one HTTP request, tear it down. What a test with a fresh HTTP dependency pays. The kernel
/// floor runs the same httpd in the engine's isolation with no engine and no published port (it connects
/// inside the container's network namespace): what any engine's fixture would cost at the least, so the
/// Testcontainers row says how far issue 15's 100× could go on this machine.
/// </summary>
internal static class ServerBenchmark
{
    public const int Port = 8080;
    private const double TargetRatio = 100;   // issue 15: a test that needs a real server waits 100× less

    /// <summary>The one request every peer makes once its server is ready (a fresh connection, as a test would).</summary>
    public static readonly HttpClient Client = new(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.Zero })
    {
        Timeout = TimeSpan.FromSeconds(10),
    };

    public static string[] HttpdCommand => ["/bin/busybox", "httpd", "-f", "-p", Port.ToString(CultureInfo.InvariantCulture), "-h", "/www"];

    public static async Task GetIndexAsync(Uri uri, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.ConnectionClose = true;
        using var response = await Client.SendAsync(request, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK || body != BusyboxRootFs.Index)
        {
            throw new InvalidOperationException($"GET {uri} answered {(int)response.StatusCode} with {body.Length} bytes, not the index page");
        }
    }

    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        using var rootfs = await BusyboxRootFs.CreateAsync(cancellationToken);
        IPeer[] all = [new EngineServerPeer(rootfs.Path), FloorPeer.ForServer(options.RepositoryRoot, rootfs.Path), new IsoTestDockerServerPeer(), new DockerRunServerPeer(), new TestcontainersServerPeer(), TestcontainersServePeer.ForServerFixture()];
        var peers = all.Where(p => options.Includes(p.Name)).ToArray();
        var rows = peers.Select(p => new PeerRow(p)).ToList();
        var slow = Math.Min(options.Count, options.SlowCount);
        var loadBefore = Load.Now();
        var stealBefore = Steal.Mark();
        var started = DateTimeOffset.UtcNow;
        try
        {
            await PeerRow.PrepareAllAsync(rows, options.Warmup, cancellationToken);
            int Count(IPeer p) => p is EngineServerPeer or FloorPeer or TestcontainersServePeer ? options.Count : slow;
            await PeerRow.RunBackToBackAsync(rows, Count, "server", cancellationToken);
            await PeerRow.RunRoundsAsync(rows, options.Count, Count, "server", cancellationToken);
        }
        finally
        {
            await PeerRow.DisposeAllAsync(peers);
        }

        var s = new StringBuilder();
        s.AppendLine("## server: HTTP server fixture (start → answers on the published port → 1 request → removed)");
        s.AppendLine();
        s.AppendLine(CultureInfo.InvariantCulture,
            $"`busybox httpd -f -p {Port} -h /www` from the same static busybox for every peer (engine: `FromDirectory` of a busybox root built like .ci/docker-setup.sh; peers on dockerd: isotest/busybox:latest; Testcontainers → isotest serve: {ServeHost.Image}, the host's root, whose /bin/busybox is that busybox), 64 MiB / 0.5 CPU, port {Port} published on the host's loopback, each peer's own readiness wait, then one GET of /index.html on a fresh connection, then removal. Milliseconds.");
        s.AppendLine(CultureInfo.InvariantCulture,
            $"The kernel floor (bench/floor/isotest-floor.c) runs that httpd over the engine's busybox root in the engine's isolation with no engine around it, and publishes no port: it knocks (a TCP connect every ~0.13 ms) and makes its GET from inside the container's network namespace, the cheapest path to the server any engine could offer. It is a floor, not a peer: no fixture on this machine can be faster, so the Testcontainers row also says how many times faster than Testcontainers the floor is, the most issue 15's target could reach here.");
        s.AppendLine(CultureInfo.InvariantCulture,
            $"{options.Count} fixtures for the engine, the kernel floor and Testcontainers → isotest serve, {slow} for each peer on dockerd, after {options.Warmup} warm-ups, back to back and then interleaved. crun is not measured here: it has no port publishing (it would need a veth/bridge or slirp set up around it, which is not what crun itself costs).");
        s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average {loadBefore} before, {Load.Now()} after; CPU steal {Steal.Since(stealBefore)}.");
        s.AppendLine();
        var baseline = rows[0];
        var floor = rows.FirstOrDefault(r => r.Peer is FloorPeer);
        s.AppendLine("Back to back (each peer's fixtures one after another, as a test suite starts them):");
        s.AppendLine();
        PeerRow.AppendTable(s, rows, r => r.BackToBack, baseline, "vs engine", new Dictionary<string, string>(),
            r => r.Peer is TestcontainersServePeer
                ? PeerRow.ServeSpeedup(r, rows.FirstOrDefault(d => d.Peer is TestcontainersServerPeer), CycleBenchmark.ServeTarget)
                : TargetFor(r, r.BackToBack, baseline.BackToBack, floor?.BackToBack));
        AppendEngineVsFloor(s, rows, floor, r => r.BackToBack, paired: false);
        s.AppendLine();
        s.AppendLine("Interleaved (peers take turns; ratios paired within a round):");
        s.AppendLine();
        PeerRow.AppendTable(s, rows, r => r.Samples, baseline, "vs engine (paired)", new Dictionary<string, string>(), r => TargetFor(r, r.Samples, baseline.Samples, floor?.Samples));
        AppendEngineVsFloor(s, rows, floor, r => r.Samples, paired: true);

        if (baseline.Peer is EngineServerPeer engine)
        {
            PeerRow.AppendPhases(s, "Where the engine's fixture goes (Stopwatch around each call):", "step", engine.Phases);
        }

        return new Section("server", s.ToString(), PeerRow.PlotPoints(rows, r => r.BackToBack));
    }

    // The floor's ratio beside the engine's: how far below Testcontainers any fixture could get here. The same pairing as the engine's.
    private static string? TargetFor(PeerRow row, List<double> samples, List<double> engine, List<double>? floor) =>
        row.Peer is TestcontainersServerPeer && Stats.PairedRatio(samples, engine) is { } r
            ? $"engine ≥ {TargetRatio}× faster: {Stats.Num(r)}× {Stats.Mark(r >= TargetRatio)}"
              + (floor is not null && Stats.PairedRatio(samples, floor) is { } f ? $" (kernel floor: {Stats.Num(f)}×)" : "")
            : null;

    /// <summary>A line under a table: the engine's fixture over the floor's, the medians (back to back) or paired within rounds.</summary>
    private static void AppendEngineVsFloor(StringBuilder s, IReadOnlyList<PeerRow> rows, PeerRow? floor, Func<PeerRow, List<double>> samples, bool paired)
    {
        var engine = rows.FirstOrDefault(r => r.Peer is EngineServerPeer);
        if (engine is null || floor is null || samples(engine).Count == 0 || samples(floor).Count == 0)
        {
            return;
        }

        var ratio = paired
            ? Stats.PairedRatio(samples(engine), samples(floor))!.Value
            : Summary.Of(samples(engine)).Median / Summary.Of(samples(floor)).Median;
        s.AppendLine();
        s.AppendLine(CultureInfo.InvariantCulture, $"engine / kernel floor, {(paired ? "paired" : "medians")}: {Stats.Num(ratio)}×");
    }
}
