using System.Net;
using IsoTest.Engine;
using Xunit;

namespace IsoTest.Tests.Waits.Integration;

/// <summary>One engine per class; disposing it must leave no container behind.</summary>
public sealed class WaitEngineFixture : IAsyncLifetime
{
    public EngineBackend Engine { get; private set; } = null!;

    public Task InitializeAsync()
    {
        Engine = new EngineBackend();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Engine.DisposeAsync();
}

/// <summary>
/// The wait strategies against a real process on the real kernel: the built-in engine on the host's
/// root filesystem. Conditions become true only after a delay, so a wait that is ready at once is wrong.
/// Wait.ForCommand and Wait.ForFile on their own are in the conformance suite (both backends).
/// </summary>
public sealed class WaitIntegrationTests(WaitEngineFixture fixture) : IClassFixture<WaitEngineFixture>, IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public Task InitializeAsync() => Task.CompletedTask;

    // Tests of one class run one at a time: whatever is still alive now leaked from the test that just ended.
    public Task DisposeAsync()
    {
        Assert.Equal(0, fixture.Engine.LiveContainers);
        return Task.CompletedTask;
    }

    private static CancellationToken Timeout() => new CancellationTokenSource(Patience).Token;

    private ContainerBuilder Shell(string script) =>
        new ContainerBuilder().FromHost().WithBackend(fixture.Engine).WithCommand("/bin/sh", "-c", script);

    [Fact]
    public async Task ForPort_ServerListensAfterADelay_ReadyAndServing()
    {
        await using var container = await Shell("sleep 0.3; exec busybox nc -ll -p 7000 -e cat")
            .WithPort(7000)
            .WaitFor(Wait.ForPort(7000))
            .StartAsync(Timeout());

        // Ready means a connection is served, not merely accepted by the engine's forwarder.
        Assert.Equal("ping\n", await TcpEcho.RoundTripAsync(container.GetEndpoint(7000), "ping\n", Timeout()));
        Assert.Equal(ContainerState.Running, container.State);
    }

    [Fact]
    public async Task ForLogMessage_LinePrintedAfterADelay_Ready()
    {
        await using var container = await Shell("echo booting; sleep 0.3; echo 'listening on 5432'; exec sleep 300")
            .WaitFor(Wait.ForLogMessage(@"^listening on \d+$"))
            .StartAsync(Timeout());

        Assert.Contains(container.GetLogs(), l => l.Text == "listening on 5432");
    }

    [Fact]
    public async Task ForLogMessage_Twice_ReadyOnlyAfterTheSecondLine()
    {
        // Like PostgreSQL, which prints "ready" once for its bootstrap and once for real.
        await using var container = await Shell("echo 'ready to accept'; sleep 0.3; echo between; echo 'ready to accept' >&2; exec sleep 300")
            .WaitFor(Wait.ForLogMessage("ready to accept", times: 2))
            .StartAsync(Timeout());

        var logs = container.GetLogs();
        Assert.Equal(2, logs.Count(l => l.Text == "ready to accept"));
        Assert.Contains(logs, l => l.Text == "between");
    }

    [Fact]
    public async Task ForHttp_Status_ReadyWhenTheServerAnswers()
    {
        await using var container = await Shell("mkdir -p /tmp/www; echo ok > /tmp/www/health; sleep 0.3; exec busybox httpd -f -p 8080 -h /tmp/www")
            .WithPort(8080)
            .WaitFor(Wait.ForHttp("/health", 8080))
            .StartAsync(Timeout());

        using var http = new HttpClient();
        Assert.Equal("ok\n", await http.GetStringAsync(new Uri(container.GetEndpoint(8080).ToUri(), "health"), Timeout()));
    }

    [Fact]
    public async Task ForHttp_BodyPredicate_ReadyOnlyWhenTheBodySaysSo()
    {
        // The server answers 200 from the start, but "starting" until the state file flips.
        await using var container = await Shell(
                "mkdir -p /tmp/www; echo starting > /tmp/www/status; busybox httpd -p 8080 -h /tmp/www; sleep 0.3; echo up > /tmp/www/status; exec sleep 300")
            .WithPort(8080)
            .WaitFor(Wait.ForHttp("/status", 8080, (status, body) => status == HttpStatusCode.OK && body.Trim() == "up"))
            .StartAsync(Timeout());

        using var http = new HttpClient();
        Assert.Equal("up\n", await http.GetStringAsync(new Uri(container.GetEndpoint(8080).ToUri(), "status"), Timeout()));
    }

    [Fact]
    public async Task And_LogThenPort_ReadyWhenBothHold()
    {
        // The line comes first, the port later: the combination must wait for the port too.
        await using var container = await Shell("echo configured; sleep 0.3; exec busybox nc -ll -p 7000 -e cat")
            .WithPort(7000)
            .WaitFor(Wait.ForLogMessage("^configured$").And(Wait.ForPort(7000)))
            .StartAsync(Timeout());

        Assert.Equal("both\n", await TcpEcho.RoundTripAsync(container.GetEndpoint(7000), "both\n", Timeout()));
    }

    [Fact]
    public async Task Timeout_ConditionNeverMet_WaitTimeoutNamesTheConditionWithTheOutputTail()
    {
        var builder = Shell("echo still-booting; echo disk-check >&2; exec sleep 300")
            .WithPort(7001)
            .WaitFor(Wait.ForPort(7001).WithTimeout(TimeSpan.FromSeconds(1)));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => builder.StartAsync(Timeout()));

        Assert.Contains("7001", e.Condition);
        Assert.Contains(e.Condition, e.Message);
        Assert.Contains("still-booting", e.OutputTail);
        Assert.Contains("disk-check", e.OutputTail);
        Assert.NotNull(e.ContainerId);
    }

    [Fact]
    public async Task Timeout_OfACombination_NamesTheUnmetPart()
    {
        var builder = Shell("echo configured; exec sleep 300")
            .WaitFor(Wait.ForLogMessage("^configured$").And(Wait.ForFile("/tmp/never")).WithTimeout(TimeSpan.FromSeconds(1)));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => builder.StartAsync(Timeout()));

        Assert.Contains("/tmp/never", e.Message);
        Assert.Contains("configured", e.OutputTail);
    }

    [Theory]
    [InlineData("port")]
    [InlineData("log")]
    [InlineData("http")]
    [InlineData("command")]
    [InlineData("file")]
    public async Task ContainerExitsWhileWaitedOn_FailsWithTheExitCodeNotATimeout(string kind)
    {
        var wait = kind switch
        {
            "port" => Wait.ForPort(7000),
            "log" => Wait.ForLogMessage("never printed"),
            "http" => Wait.ForHttp("/", 7000),
            "command" => Wait.ForCommand("test", "-f", "/tmp/never"),
            _ => Wait.ForFile("/tmp/never"),
        };
        // The wait's own timeout is far beyond the test's token: only the exit can end it in time.
        var builder = Shell("echo giving-up; sleep 0.2; exit 5").WithPort(7000).WaitFor(wait.WithTimeout(TimeSpan.FromMinutes(10)));

        var e = await Assert.ThrowsAsync<ContainerExitedException>(() => builder.StartAsync(Timeout()));

        Assert.Equal(5, e.ExitCode);
        Assert.False(e.OomKilled);
        Assert.Contains("giving-up", e.Message);
        Assert.Contains("code 5", e.Message);
    }
}
