using System.Text;

namespace IsoTest.Engine.Tests.Support;

/// <summary>One engine per test class; disposing it must leave nothing behind.</summary>
public sealed class EngineFixture : IAsyncLifetime
{
    public EngineBackend Engine { get; private set; } = null!;

    public Task InitializeAsync()
    {
        Engine = new EngineBackend();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Engine.DisposeAsync();
}

/// <summary>What a finished container printed and how it ended.</summary>
public sealed record RunResult(int ExitCode, string Stdout, string Stderr, bool OomKilled, ContainerStats Stats);

public static class Specs
{
    public static ContainerSpec Host(params string[] argv) => new() { RootFileSystem = RootFileSystem.Host, Command = argv };

    public static ContainerSpec Shell(string script) => Host("/bin/sh", "-c", script);

    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>
    /// A test timeout, times ISOTEST_TIMEOUT_SCALE when set: .ci/v2vm's guest runs under software
    /// emulation, where the same work takes tens of times longer.
    /// </summary>
    public static TimeSpan Timeout(TimeSpan normal) =>
        double.TryParse(Environment.GetEnvironmentVariable("ISOTEST_TIMEOUT_SCALE"), System.Globalization.CultureInfo.InvariantCulture, out var scale) && scale > 1
            ? normal * scale
            : normal;

    /// <summary>Creates, starts, waits for exit, collects output, removes.</summary>
    public static async Task<RunResult> RunAsync(this EngineBackend engine, ContainerSpec spec, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(Timeout(timeout ?? TimeSpan.FromSeconds(60)));
        await using var container = await engine.CreateAsync(spec, cts.Token);
        await container.StartAsync(cts.Token);
        var code = await container.WaitForExitAsync(cts.Token);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        await foreach (var line in container.FollowLogsAsync(cts.Token))
        {
            (line.Stream == LogStream.Stdout ? stdout : stderr).Append(line.Text).Append('\n');
        }

        var stats = await container.GetStatsAsync(cts.Token);
        return new RunResult(code, stdout.ToString(), stderr.ToString(), container.OomKilled, stats);
    }
}
