using IsoTest.TestSupport;
using Xunit.Abstractions;

namespace IsoTest.Server.Tests;

/// <summary>
/// A short seeded fuzz run against a real <c>isotest serve</c> process (the long one is
/// <c>bench/IsoTest.Reliability -- serve-fuzz</c>): the server keeps answering, words every 5xx, and leaves nothing half-made.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(11)]
    [InlineData(1102)]
    public async Task Serve_UnderFuzzedRequests_KeepsServingAndLeavesNothingHalfMade(int seed)
    {
        await using var serve = await ServeProcess.StartAsync();
        var fuzzer = new ApiFuzzer(serve.Socket, seed);
        var report = await fuzzer.RunAsync(600, () => !serve.HasExited);
        output.WriteLine($"seed {seed}: {report}");
        foreach (var failure in report.Failures)
        {
            output.WriteLine("  " + failure);
        }

        Assert.Equal(600, report.Inputs);
        Assert.True(report.Failures.Count == 0, $"seed {seed}: {string.Join("\n", report.Failures)}\nserver output:\n{serve.Output}");
        Assert.Equal(0, await serve.StopAsync(TimeSpan.FromSeconds(30)));
        Assert.False(File.Exists(serve.Socket), "isotest serve left its socket behind");
    }
}
