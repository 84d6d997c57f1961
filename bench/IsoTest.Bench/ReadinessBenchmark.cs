using System.Globalization;
using System.Text;

namespace IsoTest.Bench;

/// <summary>
/// How soon each wait notices its condition on the engine. The container prints the host clock (GNU date,
/// the same CLOCK_REALTIME as this process) just before it makes the condition true; the bench notes when
/// the wait completed. Also counts waits that completed before the condition could hold (must be 0).
/// </summary>
internal static class ReadinessBenchmark
{
    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        var runs = options.Quick ? 20 : 100;
        var loadBefore = Load.Now();
        var stealBefore = Steal.Mark();
        var started = DateTimeOffset.UtcNow;
        await using var engine = IsoTest.Engine.EngineBackend.Create();
        var rows = new List<(string Kind, List<double> Delays, int Early)>();
        foreach (var kind in new[] { "log", "file", "command", "port", "http" })
        {
            var (script, wait) = kind switch
            {
                "log" => ("sleep 0.3; echo \"ready $(date +%s.%N)\"; exec sleep 300", Wait.ForLogMessage("^ready ")),
                "file" => ("sleep 0.3; echo \"ready $(date +%s.%N)\"; touch /tmp/flag; exec sleep 300", Wait.ForFile("/tmp/flag")),
                "command" => ("sleep 0.3; echo \"ready $(date +%s.%N)\"; touch /tmp/flag; exec sleep 300", Wait.ForCommand("test", "-f", "/tmp/flag")),
                "port" => ("sleep 0.3; echo \"ready $(date +%s.%N)\"; exec busybox nc -ll -p 7000 -e cat", Wait.ForPort(7000)),
                _ => ("echo ok > /tmp/health; sleep 0.3; echo \"ready $(date +%s.%N)\"; exec busybox httpd -f -p 8080 -h /tmp", Wait.ForHttp("/health", 8080)),
            };
            var builder = new ContainerBuilder().FromHost().WithBackend(engine)
                .WithCommand("/bin/sh", "-c", script)
                .WithPort(7000).WithPort(8080)
                .WaitFor(wait);
            var delays = new List<double>();
            var early = 0;
            for (var i = 0; i < runs; i++)
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                cts.CancelAfter(TimeSpan.FromSeconds(60));
                await using var container = await builder.StartAsync(cts.Token);
                var ready = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalSeconds;

                // The line was printed before the condition was made true, but the engine reads output
                // asynchronously: a file or port wait may complete before the line is in the buffer.
                await foreach (var line in container.FollowLogsAsync(cts.Token))
                {
                    if (line.Text.StartsWith("ready ", StringComparison.Ordinal))
                    {
                        var became = double.Parse(line.Text["ready ".Length..], CultureInfo.InvariantCulture);
                        early += ready < became ? 1 : 0;
                        delays.Add((ready - became) * 1000);
                        break;
                    }
                }
            }

            Console.Error.WriteLine($"readiness: {kind} done");
            rows.Add((kind, delays, early));
        }

        var s = new StringBuilder();
        s.AppendLine("## readiness: how soon a wait notices its condition (engine)");
        s.AppendLine();
        s.AppendLine(CultureInfo.InvariantCulture, $"The container prints the clock, then makes the condition true; milliseconds from then until StartAsync returned. {runs} starts per wait.");
        s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average {loadBefore} before, {Load.Now()} after; CPU steal {Steal.Since(stealBefore)}.");
        s.AppendLine();
        s.AppendLine("| wait | median ms | min – max | completed before the condition held |");
        s.AppendLine("| --- | ---: | ---: | ---: |");
        foreach (var (kind, delays, early) in rows)
        {
            var summary = Summary.Of(delays);
            s.AppendLine(CultureInfo.InvariantCulture, $"| {kind} | {Stats.Num(summary.Median)} | {Stats.Num(summary.Min)} – {Stats.Num(summary.Max)} | {early} |");
        }

        return new Section("readiness", s.ToString());
    }
}
