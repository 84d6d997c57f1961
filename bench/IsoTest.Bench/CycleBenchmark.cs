using System.Diagnostics;
using System.Globalization;
using System.Text;
using IsoTest.Bench.Peers;

namespace IsoTest.Bench;

/// <summary>
/// One cycle = create + start a capped container (64 MiB, 0.5 CPU) running <c>/bin/true</c>, wait for
/// its exit, remove it. Every peer does the same work in the same run twice: back to back (one peer's
/// cycles one after another, what a test suite does) and interleaved (peers take turns, one cycle each
/// per round, so ratios can be paired within a round). The kernel floor, a C program doing the same
/// isolation with no engine, runs in both.
/// </summary>
internal static class CycleBenchmark
{

    // What the issue measured on this machine, printed beside each peer for orientation.
    private static readonly Dictionary<string, string> Reference = new()
    {
        ["IsoTest engine"] = "≤ 1.5× floor (p90 ≤ 2×), back to back",
        ["crun run"] = "≈ 16 ms (issue)",
        ["docker run --rm"] = "≈ 450 ms (issue)",
        ["Testcontainers"] = "≈ 500 ms (issue)",
    };

    // Issue 11: Testcontainers against isotest serve at least 10× faster than against dockerd, in the same run.
    internal const double ServeTarget = 10;

    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        var engine = new IsoTestPeer();
        var floor = new FloorPeer(options.RepositoryRoot, netnsAhead: false);
        var directory = new IsoTestPeer(EngineRoot.BusyboxDirectory);
        var image = new IsoTestPeer(EngineRoot.Image);
        RootlessPeer rootless = new(EngineRoot.Host), rootlessDirectory = new(EngineRoot.BusyboxDirectory);
        IPeer[] all =
        [
            engine, floor, new FloorPeer(options.RepositoryRoot, netnsAhead: true), new IsoTestPeer(seccomp: false), directory, image, rootless, rootlessDirectory,
            new CrunPeer(), new IsoTestDockerPeer(), new DockerPeer(), new DockerServePeer(), new TestcontainersPeer(), TestcontainersServePeer.ForCycle(),
        ];
        var peers = all.Where(p => options.Includes(p.Name)).ToArray();
        // Docker-based cycles take ~0.5 s each: fewer of them keep a full run within minutes.
        int Count(IPeer p) => p is IsoTestPeer or RootlessPeer or CrunPeer or FloorPeer or TestcontainersServePeer ? options.Count : Math.Min(options.Count, options.SlowCount);
        var rows = peers.Select(p => new PeerRow(p)).ToList();
        var loadBefore = Load.Now();
        var stealBefore = Steal.Mark();
        var started = DateTimeOffset.UtcNow;
        try
        {
            await PeerRow.PrepareAllAsync(rows, options.Warmup, cancellationToken);

            // The engine calls are timed back to back, what a test suite sees.
            (engine.RecordPhases, directory.RecordPhases, rootless.RecordPhases, rootlessDirectory.RecordPhases) = (true, true, true, true);
            await PeerRow.RunBackToBackAsync(rows, Count, "cycle", cancellationToken);
            (engine.RecordPhases, directory.RecordPhases, rootless.RecordPhases, rootlessDirectory.RecordPhases) = (false, false, false, false);
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
            $"{options.Count} cycles for the engine, the floor and crun, {Math.Min(options.Count, options.SlowCount)} for the Docker-based peers, after {options.Warmup} warm-up cycles each: first back to back (in {PeerRow.BackToBackBlocks} blocks of a quarter of the count, the peers' order rotating from block to block), then interleaved.");
        s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average (1/5/15 min) {loadBefore} before, {Load.Now()} after; CPU steal {Steal.Since(stealBefore)}.");
        s.AppendLine();
        s.AppendLine("Back to back (each peer's cycles one after another, as a test suite starts containers):");
        s.AppendLine();
        // --only may leave the floor out: the first row is the baseline then.
        PeerRow.AppendTable(s, rows, r => r.BackToBack, rows.FirstOrDefault(r => r.Peer == floor) ?? rows[0], "vs floor", Reference, TargetFor);
        s.AppendLine();
        s.AppendLine("Interleaved (peers take turns, one cycle each per round; ratios paired within a round):");
        s.AppendLine();
        PeerRow.AppendTable(s, rows, r => r.Samples, rows[0], "vs engine (paired)", Reference, _ => null);
        s.AppendLine();

        PeerRow.AppendPhases(s, "Where the engine's cycle goes (Stopwatch around each engine call, the back-to-back cycles):", "engine call", engine.Phases);
        AppendRootlessPhases(s, engine.Phases, rootless.Phases);
        (string, List<double>, List<double>)[] starts = [("host /", engine.Phases["create + start"], rootless.Starts), ("busybox directory", directory.Phases["create + start"], rootlessDirectory.Starts)];
        AppendStarts(s, starts);
        WriteStarts(Path.Combine(options.ResultsDirectory, "sections", "cycle-starts.tsv"), starts);
        return new Section("cycle", s.ToString(), PeerRow.PlotPoints(rows, r => r.BackToBack));

        // The engine's target is relative to the floor measured in the same run, back to back; a rootless row's to the
        // root row on the same root filesystem.
        string? TargetFor(PeerRow row)
        {
            if (row.Peer is TestcontainersServePeer or DockerServePeer)
            {
                var dockerd = rows.FirstOrDefault(r => r.Peer is TestcontainersPeer && row.Peer is TestcontainersServePeer || r.Peer is DockerPeer && row.Peer is DockerServePeer);
                return PeerRow.ServeSpeedup(row, dockerd, row.Peer is TestcontainersServePeer ? ServeTarget : null);
            }

            if (row.Peer == image)
            {
                // Issue 9: a warm start from a cached image within 1 ms of the host root.
                var hostRow = rows.FirstOrDefault(r => r.Peer == engine);
                if (hostRow is null || row.BackToBack.Count == 0 || hostRow.BackToBack.Count == 0)
                {
                    return null;
                }

                var gap = Summary.Of(row.BackToBack).Median - Summary.Of(hostRow.BackToBack).Median;
                return $"{(gap >= 0 ? "+" : "")}{Stats.Num(gap)} ms vs host root (≤ 1 ms {Stats.Mark(gap <= 1)})";
            }

            if (row.Peer == rootless || row.Peer == rootlessDirectory)
            {
                var rootRow = rows.FirstOrDefault(r => r.Peer == (row.Peer == rootless ? engine : directory));
                if (rootRow is null || row.BackToBack.Count == 0 || rootRow.BackToBack.Count == 0)
                {
                    return null;
                }

                var (l, r) = (Summary.Of(row.BackToBack), Summary.Of(rootRow.BackToBack));
                return $"median {Stats.Num(l.Median / r.Median)}× root {Stats.Mark(l.Median <= 1.5 * r.Median)}";
            }

            var floorRow = rows.FirstOrDefault(r => r.Peer == floor);
            if (row.Peer != engine || floorRow is null || row.BackToBack.Count == 0 || floorRow.BackToBack.Count == 0)
            {
                return null;
            }

            var (e, f) = (Summary.Of(row.BackToBack), Summary.Of(floorRow.BackToBack));
            return $"median {Stats.Num(e.Median / f.Median)}× floor {Stats.Mark(e.Median <= 1.5 * f.Median)}, p90 {Stats.Num(e.P90 / f.P90)}× {Stats.Mark(e.P90 <= 2 * f.P90)}";
        }
    }

    /// <summary>
    /// Issue 9's rootless target is on the start (create + start, what a test waits for before its container runs);
    /// issue 15's on the whole cycle, in the table above. Both are printed: the cycle also holds the teardown, which
    /// rootless spends freeing its mirror's overlays.
    /// </summary>
    /// <summary>
    /// The host-root cycle call by call, root against rootless (the rootless child times its own calls; the pipe's
    /// share is its round trip less those): where the rootless cycle's extra time goes, beyond its start.
    /// </summary>
    private static void AppendRootlessPhases(StringBuilder s, IReadOnlyDictionary<string, List<double>> root, IReadOnlyDictionary<string, List<double>> rootless)
    {
        if (root.Values.First().Count == 0 || rootless.Values.First().Count == 0)
        {
            return;
        }

        s.AppendLine();
        s.AppendLine("The host-root cycle call by call, rootless against root (the back-to-back cycles; the rootless child times its own calls):");
        s.AppendLine();
        s.AppendLine("| engine call | root: median ms | p90 | rootless: median ms | p90 | rootless − root (median) |");
        s.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (phase, values) in rootless)
        {
            var l = Summary.Of(values);
            if (root.TryGetValue(phase, out var asRoot))
            {
                var r = Summary.Of(asRoot);
                s.AppendLine(CultureInfo.InvariantCulture,
                    $"| {phase} | {Stats.Num(r.Median)} | {Stats.Num(r.P90)} | {Stats.Num(l.Median)} | {Stats.Num(l.P90)} | {(l.Median >= r.Median ? "+" : "")}{Stats.Num(l.Median - r.Median)} ms |");
            }
            else
            {
                s.AppendLine(CultureInfo.InvariantCulture, $"| {phase} | – | – | {Stats.Num(l.Median)} | {Stats.Num(l.P90)} | |");
            }
        }
    }

    private static void AppendStarts(StringBuilder s, IReadOnlyList<(string Root, List<double> Root0, List<double> Rootless)> pairs)
    {
        if (pairs.All(p => p.Root0.Count == 0 || p.Rootless.Count == 0))
        {
            return;
        }

        s.AppendLine();
        s.AppendLine("Start alone, rootless against root (create + start of the back-to-back cycles, timed by each engine):");
        s.AppendLine();
        s.AppendLine("| root filesystem | root: median ms | p90 | rootless: median ms | p90 | rootless / root (median) | target |");
        s.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var (root, asRoot, asRootless) in pairs)
        {
            if (asRoot.Count == 0 || asRootless.Count == 0)
            {
                continue;
            }

            var (r, l) = (Summary.Of(asRoot), Summary.Of(asRootless));
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| {root} | {Stats.Num(r.Median)} | {Stats.Num(r.P90)} | {Stats.Num(l.Median)} | {Stats.Num(l.P90)} | {Stats.Num(l.Median / r.Median)}× | ≤ 1.5× {Stats.Mark(l.Median <= 1.5 * r.Median)} |");
        }
    }

    /// <summary>
    /// The start-alone series in the order they were taken, a row per back-to-back cycle: a pattern over the run
    /// shows there and not in a median or a p90 (one slow start in eight: the maker's batched unmount, findings.md).
    /// </summary>
    private static void WriteStarts(string path, IReadOnlyList<(string Root, List<double> Root0, List<double> Rootless)> pairs)
    {
        var count = pairs.Max(p => Math.Max(p.Root0.Count, p.Rootless.Count));
        if (count == 0)
        {
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var lines = new List<string> { "cycle\t" + string.Join('\t', pairs.SelectMany(p => new[] { $"{p.Root} root ms", $"{p.Root} rootless ms" })) };
        for (var i = 0; i < count; i++)
        {
            lines.Add(i.ToString(CultureInfo.InvariantCulture) + "\t" + string.Join('\t', pairs.SelectMany(p => new[] { Cell(p.Root0, i), Cell(p.Rootless, i) })));
        }

        File.WriteAllLines(path, lines);

        static string Cell(List<double> values, int i) => i < values.Count ? values[i].ToString("0.###", CultureInfo.InvariantCulture) : "";
    }
}

/// <summary>A peer's samples in one benchmark, indexed by round so ratios can be taken pair by pair.</summary>
internal sealed class PeerRow(IPeer peer)
{
    public IPeer Peer { get; } = peer;

    /// <summary>Interleaved samples, indexed by round.</summary>
    public List<double> Samples { get; } = [];

    /// <summary>Back-to-back samples: this peer's cycles one after another.</summary>
    public List<double> BackToBack { get; } = [];

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

    /// <summary>How many blocks the back-to-back cycles come in (see <see cref="RunBackToBackAsync"/>).</summary>
    public const int BackToBackBlocks = 4;

    /// <summary>
    /// Each peer runs its cycles one after another without the others in between: what a test suite sees. In
    /// <see cref="BackToBackBlocks"/> blocks, each a quarter of the count, the peers' order rotating from block to
    /// block: run as one block per peer, the first peer alone paid for what the warm-ups of all the others left
    /// behind (dockerd's clean-up, the rootless children, JIT work), 8.3 ms against 5.2 ms for the same engine
    /// two rows later in the run of 2026-12-02 10:02. A block is long enough (50 cycles by default) that the
    /// switch from the previous peer is in the data, as a suite's first containers of a kind would be.
    /// </summary>
    public static async Task RunBackToBackAsync(IReadOnlyList<PeerRow> rows, Func<IPeer, int> countFor, string label, CancellationToken cancellationToken)
    {
        for (var block = 0; block < BackToBackBlocks; block++)
        {
            var shift = rows.Count == 0 ? 0 : block % rows.Count;
            foreach (var row in rows.Skip(shift).Concat(rows.Take(shift)).Where(r => r.Unavailable is null))
            {
                // This block's share of the count; the last block takes the remainder.
                var count = countFor(row.Peer);
                var share = block < BackToBackBlocks - 1 ? count / BackToBackBlocks : count - (BackToBackBlocks - 1) * (count / BackToBackBlocks);
                for (var i = 0; i < share && row.Unavailable is null; i++)
                {
                    await row.MeasureAsync(row.BackToBack.Count, row.BackToBack, () => row.Peer.CycleAsync(cancellationToken));
                }
            }

            Console.Error.WriteLine($"  {label}: back to back, block {block + 1}/{BackToBackBlocks} done");
        }
    }

    /// <summary>One table of peers over one set of samples; the ratio column against <paramref name="baseline"/>, paired by index.</summary>
    public static void AppendTable(StringBuilder s, IReadOnlyList<PeerRow> rows, Func<PeerRow, List<double>> samples, PeerRow baseline, string ratioColumn,
        IReadOnlyDictionary<string, string> reference, Func<PeerRow, string?> target)
    {
        s.AppendLine(CultureInfo.InvariantCulture, $"| peer | median ms | p90 | min – max | {ratioColumn} | target | what runs |");
        s.AppendLine("| --- | ---: | ---: | ---: | ---: | --- | --- |");
        foreach (var row in rows)
        {
            var notes = row.Peer.Notes.Replace("|", "\\|", StringComparison.Ordinal);
            var values = samples(row);
            var goal = target(row) ?? reference.GetValueOrDefault(row.Peer.Name, "");
            if (values.Count == 0)
            {
                s.AppendLine(CultureInfo.InvariantCulture, $"| {row.Peer.Name} | – | – | – | – | {goal} | not measured: {row.Unavailable} |");
                continue;
            }

            var ratio = row == baseline ? "1" : Stats.PairedRatio(values, samples(baseline)) is { } r ? $"{Stats.Num(r)}×" : "–";
            var failed = row.Unavailable is null ? "" : $" ({row.Unavailable}; {values.Count} cycles measured)";
            s.AppendLine(CultureInfo.InvariantCulture, $"| {row.Peer.Name} | {Stats.Cells(Summary.Of(values))} | {ratio} | {goal} | {notes}{failed} |");
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

    public static List<PlotPoint> PlotPoints(IEnumerable<PeerRow> rows, Func<PeerRow, List<double>>? samples = null) =>
        rows.Select(r => (r, v: (samples ?? (x => x.Samples))(r))).Where(x => x.v.Count > 0)
            .Select(x => Summary.Of(x.v) is var m ? new PlotPoint(x.r.Peer.Name, m.Median, m.P90, m.Min, m.Max) : null!).ToList();

    /// <summary>
    /// A client against <c>isotest serve</c> against the same client against dockerd, medians back to back: "N× faster than
    /// against dockerd", with issue 11's mark when <paramref name="target"/> is given; null when either row has no samples.
    /// </summary>
    public static string? ServeSpeedup(PeerRow serve, PeerRow? dockerd, double? target)
    {
        if (dockerd is null || serve.BackToBack.Count == 0 || dockerd.BackToBack.Count == 0)
        {
            return null;
        }

        var speedup = Summary.Of(dockerd.BackToBack).Median / Summary.Of(serve.BackToBack).Median;
        return $"{Stats.Num(speedup)}× faster than against dockerd" + (target is { } t ? $" (≥ {t}× {Stats.Mark(speedup >= t)})" : "");
    }

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

    public Task MeasureAsync(int round, Func<Task> work) => MeasureAsync(round, Samples, work);

    public async Task MeasureAsync(int round, List<double> into, Func<Task> work)
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

        into.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }
}
