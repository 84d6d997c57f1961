using System.Diagnostics;
using System.Globalization;
using System.Text;
using IsoTest.Bench.Peers;

namespace IsoTest.Bench;

/// <summary>
/// One cycle = create + start a capped container (64 MiB, 0.5 CPU) running <c>/bin/true</c>, wait for
/// its exit, remove it. Every peer does the same work in the same run, taking turns.
/// </summary>
internal static class CycleBenchmark
{
    private const double TargetMs = 5;

    // What the issue measured on this machine, printed beside each peer for orientation.
    private static readonly Dictionary<string, string> Reference = new()
    {
        ["IsoTest engine"] = $"≤ {TargetMs} ms",
        ["crun run"] = "≈ 16 ms (issue)",
        ["docker run --rm"] = "≈ 450 ms (issue)",
        ["Testcontainers"] = "≈ 500 ms (issue)",
    };

    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        var engine = new IsoTestPeer();
        IPeer[] all = [engine, new CrunPeer(), new IsoTestDockerPeer(), new DockerPeer(), new TestcontainersPeer()];
        var peers = all.Where(p => options.Includes(p.Name)).ToArray();
        // Docker-based cycles take ~0.5 s each: fewer of them keep a full run within minutes.
        int Count(IPeer p) => p is IsoTestPeer or CrunPeer ? options.Count : Math.Min(options.Count, options.SlowCount);
        var rows = peers.Select(p => new PeerRow(p)).ToList();
        var loadBefore = Load.Now();
        var stealBefore = Steal.Mark();
        var started = DateTimeOffset.UtcNow;
        try
        {
            await PeerRow.PrepareAllAsync(rows, options.Warmup, cancellationToken);
            engine.RecordPhases = true;

            await PeerRow.RunRoundsAsync(rows, options.Count, Count, "cycle", cancellationToken);
        }
        finally
        {
            await PeerRow.DisposeAllAsync(peers);
        }

        var s = new StringBuilder();
        s.AppendLine("## cycle: create + start + wait for exit + remove");
        s.AppendLine();
        s.AppendLine("A container capped at 64 MiB and 0.5 CPU runs `/bin/true`; the caller waits for its exit and removes it. Milliseconds, wall clock as the caller sees it.");
        s.AppendLine(CultureInfo.InvariantCulture,
            $"{options.Count} cycles for the engine and crun, {Math.Min(options.Count, options.SlowCount)} for the Docker-based peers, after {options.Warmup} warm-up cycles each; peers take turns, one cycle each per round.");
        s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average (1/5/15 min) {loadBefore} before, {Load.Now()} after; CPU steal {Steal.Since(stealBefore)}.");
        s.AppendLine();
        s.AppendLine("| peer | median ms | p90 | min – max | vs engine (paired) | target | what runs |");
        s.AppendLine("| --- | ---: | ---: | ---: | ---: | --- | --- |");
        var baseline = rows[0];
        foreach (var row in rows)
        {
            var notes = row.Peer.Notes.Replace("|", "\\|", StringComparison.Ordinal);
            if (row.Samples.Count == 0)
            {
                s.AppendLine(CultureInfo.InvariantCulture, $"| {row.Peer.Name} | – | – | – | – | {Reference.GetValueOrDefault(row.Peer.Name, "")} | not measured: {row.Unavailable} |");
                continue;
            }

            var summary = Summary.Of(row.Samples);
            var ratio = row == baseline ? "1" : Stats.PairedRatio(row.Samples, baseline.Samples) is { } r ? $"{Stats.Num(r)}×" : "–";
            var target = row == baseline ? $"≤ {TargetMs} ms {Stats.Mark(summary.Median <= TargetMs)}" : Reference.GetValueOrDefault(row.Peer.Name, "");
            var failed = row.Unavailable is null ? "" : $" ({row.Unavailable}; {row.Samples.Count} cycles measured)";
            s.AppendLine(CultureInfo.InvariantCulture, $"| {row.Peer.Name} | {Stats.Cells(summary)} | {ratio} | {target} | {notes}{failed} |");
        }

        PeerRow.AppendPhases(s, "Where the engine's cycle goes (Stopwatch around each engine call, same cycles as above):", "engine call", engine.Phases);
        return new Section("cycle", s.ToString(), PeerRow.PlotPoints(rows));
    }
}

/// <summary>A peer's samples in one benchmark, indexed by round so ratios can be taken pair by pair.</summary>
internal sealed class PeerRow(IPeer peer)
{
    public IPeer Peer { get; } = peer;

    public List<double> Samples { get; } = [];

    public string? Unavailable { get; set; }

    /// <summary>
    /// Round-robin, one cycle per peer per round, until each peer has its count: load that comes and goes
    /// hits every peer alike, and ratios can be taken pair by pair within a round.
    /// </summary>
    public static async Task RunRoundsAsync(IReadOnlyList<PeerRow> rows, int rounds, Func<IPeer, int> countFor, string label, CancellationToken cancellationToken)
    {
        for (var i = 0; i < rounds; i++)
        {
            foreach (var row in rows.Where(r => r.Unavailable is null && r.Samples.Count < countFor(r.Peer)).ToArray())
            {
                await row.MeasureAsync(i, () => row.Peer.CycleAsync(cancellationToken));
            }

            if ((i + 1) % 50 == 0)
            {
                Console.Error.WriteLine($"  {label}: {i + 1}/{rounds} rounds");
            }
        }
    }

    /// <summary>The engine's own breakdown under a benchmark's table, when it was recorded.</summary>
    public static void AppendPhases(StringBuilder s, string caption, string column, IReadOnlyDictionary<string, List<double>> phases)
    {
        if (phases.Values.First().Count == 0)
        {
            return;
        }

        s.AppendLine();
        s.AppendLine(caption);
        s.AppendLine();
        s.AppendLine(CultureInfo.InvariantCulture, $"| {column} | median ms | p90 | min – max |");
        s.AppendLine("| --- | ---: | ---: | ---: |");
        foreach (var (phase, values) in phases)
        {
            s.AppendLine(CultureInfo.InvariantCulture, $"| {phase} | {Stats.Cells(Summary.Of(values))} |");
        }
    }

    public static List<PlotPoint> PlotPoints(IEnumerable<PeerRow> rows) =>
        rows.Where(r => r.Samples.Count > 0).Select(r => Summary.Of(r.Samples) is var x ? new PlotPoint(r.Peer.Name, x.Median, x.P90, x.Min, x.Max) : null!).ToList();

    public static async Task DisposeAllAsync(IEnumerable<IPeer> peers)
    {
        foreach (var peer in peers)
        {
            await peer.DisposeAsync();
        }
    }

    public static async Task PrepareAllAsync(IEnumerable<PeerRow> rows, int warmup, CancellationToken cancellationToken)
    {
        foreach (var row in rows)
        {
            Console.Error.Write($"{row.Peer.Name}: preparing... ");
            try
            {
                await row.Peer.PrepareAsync(cancellationToken);
                for (var i = 0; i < warmup; i++)
                {
                    await row.Peer.CycleAsync(cancellationToken);
                }

                Console.Error.WriteLine($"warmed up ({warmup} cycles)");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                row.Unavailable = e is PeerUnavailableException ? e.Message : $"{e.GetType().Name}: {e.Message}";
                Console.Error.WriteLine($"unavailable: {row.Unavailable}");
            }
        }
    }

    public async Task MeasureAsync(int round, Func<Task> work)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            await work();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Unavailable = $"failed in round {round + 1}: {e.GetType().Name}: {e.Message}";
            Console.Error.WriteLine($"{Peer.Name}: {Unavailable}");
            return;
        }

        Samples.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }
}
