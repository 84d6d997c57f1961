using System.Globalization;

namespace IsoTest.Bench;

/// <summary>
/// IsoTest's benchmarks against its peers. Prints a markdown table and writes it under bench/results/.
/// <c>dotnet run -c Release --project bench/IsoTest.Bench -- cycle [--count 200] [--quick]</c>
/// </summary>
internal static class Program
{
    private const string Usage = """
        Usage: dotnet run -c Release --project bench/IsoTest.Bench -- BENCHMARK [OPTIONS]

        Benchmarks:
          cycle    create + start + wait + remove a capped /bin/true container: IsoTest engine, crun, docker

        Options:
          --count N    measured cycles per peer (default 200)
          --quick      20 cycles, 2 warm-ups; writes bench/results/<benchmark>-quick.md instead
          --out PATH   where to write the table (default bench/results/<benchmark>.md)
        """;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }

        var count = 200;
        var warmup = 10;
        var quick = false;
        string? output = null;
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
                case "--out" when i + 1 < args.Length:
                    output = args[++i];
                    break;
                default:
                    Console.Error.WriteLine($"bench: unexpected argument '{args[i]}'\n\n{Usage}");
                    return 2;
            }
        }

        if (quick)
        {
            count = Math.Min(count, 20);
            warmup = 2;
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            // Let the run unwind so every peer is disposed: no driver shell, bundle or daemon is left behind.
            e.Cancel = true;
            cancel.Cancel();
        };

        switch (args[0])
        {
            case "cycle":
                var path = output ?? Path.Combine(RepositoryRoot(), "bench", "results", quick ? "cycle-quick.md" : "cycle.md");
                return await CycleBenchmark.RunAsync(count, warmup, path, cancel.Token);
            default:
                Console.Error.WriteLine($"bench: unknown benchmark '{args[0]}'\n\n{Usage}");
                return 2;
        }
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
