using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace IsoTest.Bench;

/// <summary>
/// A real test suite: 200 xunit tests (bench/PgSuite), each with its own fresh PostgreSQL server through
/// <c>[ContainerFixture]</c>, against the same suite sharing one server. Wall time of <c>dotnet test</c>.
/// </summary>
internal static partial class SuiteBenchmark
{
    private const double TargetSeconds = 30;
    private const string User = "postgres";

    // fresh = a server per test, started when its test begins, shared = one for all; "prestart 2" has IsoTest's pool
    // start the next tests' servers ahead (what that saves, or costs, on these cores); the last shows what Npgsql's
    // per-connection type loading (a catalog query on a cold server, ~40 ms) costs each fresh test: the same suite without it.
    private static readonly (string Label, string Build, string Npgsql, string Prestart)[] Variants =
    [
        ("fresh", "fresh", "", ""),
        ("shared", "shared", "", ""),
        ("fresh, prestart 2", "fresh", "", "2"),
        ("fresh, NoTypeLoading", "fresh", ";Server Compatibility Mode=NoTypeLoading", ""),
    ];

    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        var project = Path.Combine(options.RepositoryRoot, "bench", "PgSuite", "PgSuite.csproj");
        var work = Directory.CreateTempSubdirectory("isotest-bench-pgsuite-");
        var runs = options.Quick ? 1 : 3;
        try
        {
            var outputs = new Dictionary<string, string>();
            foreach (var mode in new[] { "fresh", "shared" })
            {
                Console.Error.WriteLine($"suite: building bench/PgSuite ({mode})...");
                outputs[mode] = Path.Combine(work.FullName, mode);
                var build = await Shell.RunAsync("dotnet", ["build", project, "-c", "Release", $"-p:PgSuiteMode={mode}", "-o", outputs[mode], "-v", "q", "-nologo"], cancellationToken: cancellationToken);
                if (build.ExitCode != 0)
                {
                    throw new InvalidOperationException($"building {project} ({mode}) failed: {build.Stdout.Trim()[^Math.Min(2000, build.Stdout.Trim().Length)..]}");
                }
            }

            var (template, initdbMs) = await MakeTemplateAsync(work.FullName, cancellationToken);
            var loadBefore = Load.Now();
            var stealBefore = Steal.Mark();
            var started = DateTimeOffset.UtcNow;
            var wall = Variants.ToDictionary(v => v.Label, _ => new List<double>());
            var reported = Variants.ToDictionary(v => v.Label, _ => "");
            for (var r = 0; r < runs; r++)
            {
                foreach (var (mode, build, npgsql, prestart) in Variants)
                {
                    var sw = Stopwatch.StartNew();
                    var test = await Shell.RunAsync("dotnet", ["test", Path.Combine(outputs[build], "PgSuite.dll")],
                        new Dictionary<string, string> { ["PGSUITE_TEMPLATE"] = template, ["PGSUITE_USER"] = User, ["PGSUITE_NPGSQL"] = npgsql, ["PGSUITE_PRESTART"] = prestart }, cancellationToken);
                    var seconds = sw.Elapsed.TotalSeconds;
                    var summary = SummaryLine().Match(test.Stdout);
                    if (test.ExitCode != 0 || !summary.Success)
                    {
                        throw new InvalidOperationException($"dotnet test ({mode}) exited with {test.ExitCode}: {(test.Stdout + test.Stderr).Trim()[^Math.Min(3000, (test.Stdout + test.Stderr).Trim().Length)..]}");
                    }

                    wall[mode].Add(seconds);
                    reported[mode] = summary.Value.Trim();
                    Console.Error.WriteLine($"  suite ({mode}) run {r + 1}/{runs}: {seconds:0.0} s; {reported[mode]}");
                }
            }

            var s = new StringBuilder();
            s.AppendLine("## suite: 200 xunit tests, each with a fresh PostgreSQL");
            s.AppendLine();
            s.AppendLine("bench/PgSuite: 200 `[Fact]`s in 10 classes (xunit runs classes in parallel, 2 threads = nproc) through IsoTest.Xunit. Each test connects with Npgsql, creates a table, inserts two rows and sums them.");
            s.AppendLine("*fresh*: `[Fact, ContainerFixture(typeof(Postgres))]`, a new server per test, started when its test begins: host `postgres` as user postgres on a copy-on-write view of a template data directory that `initdb` made once (the PostgreSQL example's approach), 256 MiB / 1 CPU, ready on its log line. *shared*: the same tests with one `[assembly: ContainerFixture]` server (`-p:PgSuiteMode=shared`). *fresh, prestart 2*: fresh with `ContainerDefinition.Prestart` 2, the pool starting the next tests' servers while earlier tests run. *fresh, NoTypeLoading*: fresh, with `Server Compatibility Mode=NoTypeLoading` in the connection string (Npgsql then skips loading the server's type catalog on its first connection).");
            s.AppendLine(CultureInfo.InvariantCulture,
                $"Wall time of `dotnet test PgSuite.dll` (includes the test host's start, ~1–2 s), {runs} run(s) of each, alternating; the one-off initdb ({initdbMs:0} ms) and the builds are not included. Run {started:yyyy-MM-dd HH:mm} UTC, load average {loadBefore} before, {Load.Now()} after; CPU steal {Steal.Since(stealBefore)}.");
            s.AppendLine();
            s.AppendLine("| suite | median s | p90 | min – max | vs shared (paired) | dotnet test said | target |");
            s.AppendLine("| --- | ---: | ---: | ---: | ---: | --- | --- |");
            foreach (var (mode, _, _, _) in Variants)
            {
                var x = Summary.Of(wall[mode]);
                var ratio = Stats.PairedRatio(wall[mode], wall["shared"]) ?? 0;
                // The issue's target: a fresh server per test within 1.3× of sharing one.
                var target = mode.StartsWith("fresh", StringComparison.Ordinal) && !mode.Contains("NoTypeLoading", StringComparison.Ordinal) ? $"≤ 1.3× shared {Stats.Mark(ratio <= 1.3)}, < {TargetSeconds} s {Stats.Mark(x.Median < TargetSeconds)}"
                    : mode.StartsWith("fresh", StringComparison.Ordinal) ? $"< {TargetSeconds} s {Stats.Mark(x.Median < TargetSeconds)}" : "";
                s.AppendLine(CultureInfo.InvariantCulture, $"| 200 tests, {mode} | {Stats.Cells(x)} | {Stats.Num(ratio)}× | {reported[mode].Replace("|", "\\|", StringComparison.Ordinal)} | {target} |");
            }

            var extra = (Summary.Of(wall["fresh"]).Median - Summary.Of(wall["shared"]).Median) / 200 * 2;
            s.AppendLine();
            s.AppendLine(CultureInfo.InvariantCulture, $"A fresh server costs each test about {extra * 1000:0} ms more than sharing one ((fresh − shared) / 200 tests × 2 parallel threads).");
            return new Section("suite", s.ToString());
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>initdb once, in an engine container as the postgres user (it refuses root), into work/template/data.</summary>
    private static async Task<(string Template, double Milliseconds)> MakeTemplateAsync(string work, CancellationToken cancellationToken)
    {
        var template = Directory.CreateDirectory(Path.Combine(work, "template"));
        // Let the postgres user create data/ here; afterwards only the mount's view is ever written.
        template.UnixFileMode = (UnixFileMode)Convert.ToInt32("1777", 8);
        new DirectoryInfo(work).UnixFileMode = (UnixFileMode)Convert.ToInt32("0755", 8);
        var sw = Stopwatch.StartNew();
        await using var backend = IsoTest.Engine.EngineBackend.Create();
        await using var initdb = await new ContainerBuilder()
            .FromHost()
            .WithUser(User)
            .WithBindMount(template.FullName, "/template")
            .WithCommand("/usr/local/bin/initdb", "-D", "/template/data", "--username=postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--wal-segsize=1")
            .WithMemoryLimit("256m")
            .WithBackend(backend)
            .StartAsync(cancellationToken);
        var exitCode = await initdb.WaitForExitAsync(cancellationToken);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"initdb exited with {exitCode}: {string.Join('\n', initdb.GetLogs().TakeLast(20))}");
        }

        template.UnixFileMode = (UnixFileMode)Convert.ToInt32("0755", 8);
        return (template.FullName, sw.Elapsed.TotalMilliseconds);
    }

    [GeneratedRegex(@"(Passed!|Failed!).*", RegexOptions.Multiline)]
    private static partial Regex SummaryLine();
}
