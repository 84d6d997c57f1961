using System.Globalization;
using Xunit;
using Xunit.Abstractions;

namespace IsoTest.Tests.Waits.Integration;

/// <summary>
/// How soon each wait notices its condition. The container prints the host clock (GNU date, same
/// CLOCK_REALTIME as the test) just before it makes the condition true; the test notes when the
/// wait completes. The figures go to the test output for the notes; the assertion is only about
/// correctness: no wait may complete before its condition could hold.
/// </summary>
public sealed class ReadinessLatencyTests(WaitEngineFixture fixture, ITestOutputHelper output) : IClassFixture<WaitEngineFixture>
{
    private const int Runs = 20;

    [Theory]
    [InlineData("log")]
    [InlineData("file")]
    [InlineData("command")]
    [InlineData("port")]
    [InlineData("http")]
    public async Task Wait_CompletesOnlyAfterTheConditionHolds_ReportsTheDelay(string kind)
    {
        var (script, wait) = kind switch
        {
            "log" => ("sleep 0.3; echo \"ready $(date +%s.%N)\"; exec sleep 300", Wait.ForLogMessage("^ready ")),
            "file" => ("sleep 0.3; echo \"ready $(date +%s.%N)\"; touch /tmp/flag; exec sleep 300", Wait.ForFile("/tmp/flag")),
            "command" => ("sleep 0.3; echo \"ready $(date +%s.%N)\"; touch /tmp/flag; exec sleep 300", Wait.ForCommand("test", "-f", "/tmp/flag")),
            "port" => ("sleep 0.3; echo \"ready $(date +%s.%N)\"; exec busybox nc -ll -p 7000 -e cat", Wait.ForPort(7000)),
            _ => ("echo ok > /tmp/health; sleep 0.3; echo \"ready $(date +%s.%N)\"; exec busybox httpd -f -p 8080 -h /tmp", Wait.ForHttp("/health", 8080)),
        };
        var builder = new ContainerBuilder().FromHost().WithBackend(fixture.Engine)
            .WithCommand("/bin/sh", "-c", script)
            .WithPort(7000).WithPort(8080)
            .WaitFor(wait);

        var delays = new List<double>();
        for (var i = 0; i < Runs; i++)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await using var container = await builder.StartAsync(cts.Token);
            var ready = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalSeconds;
            // The line was printed before the condition was made true, but the engine reads output
            // asynchronously: a file or port wait may complete before the line is in the buffer.
            string? line = null;
            await foreach (var l in container.FollowLogsAsync(cts.Token))
            {
                if (l.Text.StartsWith("ready ", StringComparison.Ordinal))
                {
                    line = l.Text;
                    break;
                }
            }

            Assert.NotNull(line);
            var became = double.Parse(line["ready ".Length..], CultureInfo.InvariantCulture);

            Assert.True(ready >= became, $"{kind}: the wait completed {became - ready:0.000} s before the condition was made true");
            delays.Add((ready - became) * 1000);
        }

        delays.Sort();
        output.WriteLine(FormattableString.Invariant(
            $"{kind}: detection delay over {Runs} runs: median {delays[Runs / 2]:0.0} ms, min {delays[0]:0.0} ms, max {delays[^1]:0.0} ms"));
    }
}
