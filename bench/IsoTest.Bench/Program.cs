using System.Globalization;

namespace IsoTest.Bench;

/// <summary>How long each benchmark runs; <c>--quick</c> shrinks every figure's run count.</summary>
internal sealed record Options(bool Quick, int Count, int SlowCount, int Warmup, int ScaleCount, int DockerScaleCount, string ResultsDirectory, string RepositoryRoot)
{
    /// <summary>Only the peers whose name starts with one of these '|'-separated prefixes (for profiling); null: all.</summary>
    public string? Only { get; init; }

    public bool Includes(string peer) =>
        Only is null || Only.Split('|').Any(prefix => peer.StartsWith(prefix, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// IsoTest's benchmarks against its peers. Prints markdown tables and keeps the latest of each in
/// bench/results/results.md, with a plot in bench/results/latency.png. Asserts nothing.
/// </summary>
internal static class Program
{
    private const string Usage = """
        Usage: dotnet run -c Release --project bench/IsoTest.Bench -- BENCHMARK [OPTIONS]

        Benchmarks:
          cycle    create + start + wait + remove a capped /bin/true container: IsoTest engine (host root,
                   busybox directory root, seccomp off, and both roots rootless as user isotest), the kernel
                   floor (bench/floor), crun,
                   IsoTest Docker backend, docker run --rm, Testcontainers
          server   busybox httpd fixture: start, wait until it answers on the published port, 1 request, remove
          scale    1,000 engine containers (sleep 600) alive at once: start rate, memory each, teardown; docker: 100
          portfwd  throughput (256 MiB) and 1-byte round trips through a published port vs direct loopback
          suite    200 xunit tests, each with a fresh PostgreSQL (bench/PgSuite), vs one shared server
          network  create + start + exit + remove of /bin/true on the private default vs joined to a network;
                   throughput member to member, loopback in one container, outbound (slirp4netns)
          api      the Docker API, dockerd and isotest serve: inspect requests/s and concurrent creates/s
          pull     pull + unpack from a local registry: IsoTest, docker pull, skopeo copy + umoci unpack
          readiness  how soon each wait (log, file, command, port, http) notices its condition on the engine: medians
          all      every benchmark above, in that order
          diag-pg  not a benchmark: one PostgreSQL fixture step by step (explains the suite's figure)
          report   measure nothing: rebuild results.md and latency.png (e.g. after editing results/findings.md)

        Options:
          --count N    measured rounds for the fast peers (default 200; Docker-based peers: at most 60)
          --quick      short runs (all of them together in a few minutes); results go to bench/results/quick/
          --out DIR    where results.md, latency.png and sections/ go (default bench/results)
          --only NAME  cycle/server: only the peers whose name starts with NAME, or with any of NAME1|NAME2 (for profiling; use with --out)
          --containers N  scale: how many engine containers (default 1,000); 10,000 needs raised limits, which
                       the benchmark checks first and names (ulimit -n, kernel.pid_max)

        Root is needed (the engine in root mode, crun, dockerd). Ctrl-C tears down everything started.
        """;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }

        if (args[0] == Peers.RootlessPeer.DriverCommand && args.Length == 2)
        {
            return await Peers.RootlessPeer.DriveAsync(args[1]); // not a benchmark: the rootless rows' child
        }

        if (args[0] == ScaleBenchmark.DriverCommand && args.Length == 2 && int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out var share))
        {
            return await ScaleBenchmark.DriveAsync(share); // not a benchmark: one engine process of a split scale run
        }

        int? count = null;
        var quick = false;
        string? output = null;
        string? only = null;
        int? containers = null;
        for (var i = 1; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    quick = true;
                    break;
                case "--count" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0:
                    count = n;
                    i++;
                    break;
                case "--containers" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var c) && c > 0:
                    containers = c;
                    i++;
                    break;
                case "--only" when i + 1 < args.Length:
                    only = args[++i];
                    break;
                case "--out" when i + 1 < args.Length:
                    output = args[++i];
                    break;
                default:
                    Console.Error.WriteLine($"bench: unexpected argument '{args[i]}'\n\n{Usage}");
                    return 2;
            }
        }

        var root = RepositoryRoot();
        var options = quick
            ? new Options(true, count ?? 30, 10, 2, 200, 20, output ?? Path.Combine(root, "bench", "results", "quick"), root)
            : new Options(false, count ?? 200, 60, 10, 1000, 100, output ?? Path.Combine(root, "bench", "results"), root);
        options = options with { Only = only, ScaleCount = containers ?? options.ScaleCount };

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            // Let the run unwind so every peer is disposed: no container, bundle or daemon is left behind.
            e.Cancel = true;
            Console.Error.WriteLine("bench: cancelling, tearing down...");
            cancel.Cancel();
        };

        Func<Options, CancellationToken, Task<Section>>[] benchmarks = args[0] switch
        {
            "cycle" => [CycleBenchmark.RunAsync],
            "server" => [ServerBenchmark.RunAsync],
            "scale" => [ScaleBenchmark.RunAsync],
            "portfwd" => [PortForwardBenchmark.RunAsync],
            "suite" => [SuiteBenchmark.RunAsync],
            "readiness" => [ReadinessBenchmark.RunAsync],
            "network" => [NetworkBenchmark.RunAsync],
            "api" => [ApiBenchmark.RunAsync],
            "pull" => [PullBenchmark.RunAsync],
            "diag-pg" => [PgFixtureDiagnostics.RunAsync],
            "all" => [CycleBenchmark.RunAsync, ServerBenchmark.RunAsync, ScaleBenchmark.RunAsync, PortForwardBenchmark.RunAsync, SuiteBenchmark.RunAsync],
            _ => [],
        };
        var results = new Results(options.ResultsDirectory);
        if (args[0] == "report")
        {
            await results.RebuildAsync(cancel.Token);
            Console.Error.WriteLine($"rebuilt {Path.Combine(options.ResultsDirectory, "results.md")} and latency.png from sections/ and findings.md");
            return 0;
        }

        if (benchmarks.Length == 0)
        {
            Console.Error.WriteLine($"bench: unknown benchmark '{args[0]}'\n\n{Usage}");
            return 2;
        }

        foreach (var benchmark in benchmarks)
        {
            try
            {
                var section = await benchmark(options, cancel.Token);
                Console.WriteLine(section.Markdown);
                await results.SaveAsync(section, CancellationToken.None);
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                Console.Error.WriteLine("bench: cancelled; nothing written for the benchmark that was running.");
                return 130;
            }
            catch (InvalidOperationException e)
            {
                // A benchmark that cannot run here says why and how to fix it; nothing is written for it.
                Console.Error.WriteLine($"bench: {e.Message}");
                return 1;
            }
        }

        Console.Error.WriteLine($"written to {Path.Combine(options.ResultsDirectory, "results.md")} and latency.png");
        return 0;
    }

    /// <summary>The directory holding IsoTest.sln, found upwards from here or from the program; else the current directory.</summary>
    private static string RepositoryRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "IsoTest.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return Environment.CurrentDirectory;
    }
}
