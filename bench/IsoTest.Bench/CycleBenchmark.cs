using System.Diagnostics;
using System.Globalization;
using System.Text;
using IsoTest.Bench.Peers;

namespace IsoTest.Bench;

/// <summary>
/// Issue 2's benchmark: one cycle = create + start a capped container (64 MiB, 0.5 CPU) running
/// <c>/bin/true</c>, wait for its exit, remove it. Every peer does the same work in the same run.
/// </summary>
internal static class CycleBenchmark
{
    private sealed class Row(IPeer peer)
    {
        public IPeer Peer { get; } = peer;

        public List<double> Milliseconds { get; } = [];

        public string? Unavailable { get; set; }
    }

    public static async Task<int> RunAsync(int count, int warmup, string outputPath, CancellationToken cancellationToken)
    {
        IPeer[] peers = [new IsoTestPeer(), new CrunPeer(), new DockerPeer()];
        var rows = peers.Select(p => new Row(p)).ToList();
        try
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
                catch (Exception e) when (e is PeerUnavailableException or InvalidOperationException or IsoTestException)
                {
                    row.Unavailable = e.Message;
                    Console.Error.WriteLine($"unavailable: {e.Message}");
                }
            }

            // Round-robin, one cycle per peer per round: on a shared 2-core machine, load that comes and
            // goes then hits every peer alike instead of whichever happened to run at the time.
            var live = rows.Where(r => r.Unavailable is null).ToList();
            for (var i = 0; i < count && live.Count > 0; i++)
            {
                foreach (var row in live.ToArray())
                {
                    var start = Stopwatch.GetTimestamp();
                    try
                    {
                        await row.Peer.CycleAsync(cancellationToken);
                    }
                    catch (Exception e) when (e is InvalidOperationException or IsoTestException)
                    {
                        row.Unavailable = $"failed at cycle {i + 1}: {e.Message}";
                        live.Remove(row);
                        continue;
                    }

                    row.Milliseconds.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }

                if ((i + 1) % 20 == 0)
                {
                    Console.Error.WriteLine($"  {i + 1}/{count} rounds");
                }
            }
        }
        finally
        {
            foreach (var peer in peers)
            {
                await peer.DisposeAsync();
            }
        }

        var report = Report(rows, count, warmup);
        Console.WriteLine(report);
        Directory.CreateDirectory(Path.GetDirectoryName(outputPath)!);
        await File.WriteAllTextAsync(outputPath, report, cancellationToken);
        Console.Error.WriteLine($"written to {outputPath}");
        return 0;
    }

    private static string Report(List<Row> rows, int count, int warmup)
    {
        var isoTest = rows[0].Milliseconds.Count > 0 ? Percentile(rows[0].Milliseconds, 50) : (double?)null;
        var s = new StringBuilder();
        s.AppendLine("# Container cycle: create + start + wait + remove");
        s.AppendLine();
        s.AppendLine("One cycle: create and start a container capped at 64 MiB and 0.5 CPU running `/bin/true`, wait for it to exit, remove it.");
        s.AppendLine(CultureInfo.InvariantCulture, $"{count} cycles per peer after {warmup} warm-up cycles each; peers take turns, one cycle each per round. Times in milliseconds, wall clock, as the caller sees them.");
        s.AppendLine();
        s.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Machine.Describe()}.");
        s.AppendLine(CultureInfo.InvariantCulture, $"Run: {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC, `dotnet run -c Release --project bench/IsoTest.Bench -- cycle`.");
        s.AppendLine();
        s.AppendLine("| peer | median | p90 | min – max | median vs IsoTest | what runs |");
        s.AppendLine("| --- | ---: | ---: | ---: | ---: | --- |");
        foreach (var row in rows)
        {
            var notes = row.Peer.Notes.Replace("|", "\\|", StringComparison.Ordinal);
            if (row.Milliseconds.Count == 0)
            {
                s.AppendLine(CultureInfo.InvariantCulture, $"| {row.Peer.Name} | – | – | – | – | not measured: {row.Unavailable} |");
                continue;
            }

            var median = Percentile(row.Milliseconds, 50);
            var ratio = isoTest is { } baseline ? $"{median / baseline:0.0}×" : "–";
            var failed = row.Unavailable is null ? "" : $" ({row.Unavailable}; {row.Milliseconds.Count} cycles measured)";
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| {row.Peer.Name} | {Ms(median)} | {Ms(Percentile(row.Milliseconds, 90))} | {Ms(row.Milliseconds.Min())} – {Ms(row.Milliseconds.Max())} | {ratio} | {notes}{failed} |");
        }

        return s.ToString();
    }

    private static string Ms(double ms) => ms.ToString(ms < 10 ? "0.00" : ms < 100 ? "0.0" : "0", CultureInfo.InvariantCulture);

    /// <summary>Linear interpolation between the closest ranks (the median of an even count is the mean of the middle two).</summary>
    private static double Percentile(List<double> values, double percent)
    {
        var sorted = values.Order().ToArray();
        var rank = percent / 100 * (sorted.Length - 1);
        var low = (int)Math.Floor(rank);
        var high = (int)Math.Ceiling(rank);
        return sorted[low] + ((sorted[high] - sorted[low]) * (rank - low));
    }
}
