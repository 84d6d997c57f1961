using System.Net;
using System.Net.Sockets;
using IsoTest.Tests.Fakes;
using Xunit;

namespace IsoTest.Tests.Waits;

public class WaitTests
{
    private readonly TimerLog _time = new();

    private static readonly TimeSpan[] ExpectedBackoff =
        [.. new[] { 1, 2, 4, 8, 16, 32, 50, 50 }.Select(ms => TimeSpan.FromMilliseconds(ms))];

    [Fact]
    public async Task ForPort_OpenAtFirstProbe_IsReadyWithoutPausing()
    {
        var container = new FakeProbingContainer { PortOpen = true };

        await Wait.ForPort(6379).WaitAsync(container, _time, default);

        Assert.Equal(1, container.PortProbes);
    }

    [Fact]
    public async Task ForPort_ClosedAtFirst_RetriesWithExponentialBackoffCappedAt50Ms()
    {
        var container = new FakeProbingContainer();
        var wait = Wait.ForPort(6379).WaitAsync(container, _time, default);

        var pauses = new List<TimeSpan>();
        foreach (var _ in ExpectedBackoff)
        {
            var pause = await _time.NextPauseAsync();
            pauses.Add(pause);
            container.PortOpen = pauses.Count == ExpectedBackoff.Length;
            _time.Clock.Advance(pause);
        }

        await wait;
        Assert.Equal(ExpectedBackoff, pauses);
        Assert.Equal(ExpectedBackoff.Length + 1, container.PortProbes);
    }

    [Fact]
    public async Task ForPort_CheapProbes_BackOffOnlyToTheContainersCap()
    {
        // The engine's probes cost ~0.1 ms, so it caps the pauses at 10 ms (Docker's stay at 50 ms).
        var container = new FakeProbingContainer { MaxProbeInterval = TimeSpan.FromMilliseconds(10) };
        var wait = Wait.ForPort(6379).WaitAsync(container, _time, default);
        TimeSpan[] expected = [.. new[] { 1, 2, 4, 8, 10, 10 }.Select(ms => TimeSpan.FromMilliseconds(ms))];

        var pauses = new List<TimeSpan>();
        foreach (var _ in expected)
        {
            var pause = await _time.NextPauseAsync();
            pauses.Add(pause);
            container.PortOpen = pauses.Count == expected.Length;
            _time.Clock.Advance(pause);
        }

        await wait;
        Assert.Equal(expected, pauses);
    }

    [Fact]
    public async Task ForPort_NeverOpen_TimesOutNamingTheConditionWithOutputTail()
    {
        var container = new FakeProbingContainer();
        for (var i = 0; i < 30; i++)
        {
            container.Log($"line-{i:D2}");
        }

        var wait = Wait.ForPort(6379).WithTimeout(TimeSpan.FromSeconds(5)).WaitAsync(container, _time, default);
        await _time.NextPauseAsync(); // the first probe has failed
        _time.Clock.Advance(TimeSpan.FromSeconds(5));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => wait);
        Assert.Equal("port 6379 accepting connections", e.Condition);
        Assert.Contains("port 6379 accepting connections was not met", e.Message);
        Assert.Contains("after 5 s", e.Message);
        Assert.Contains("nothing listens on port 6379", e.Message);
        Assert.Equal(container.Id, e.ContainerId);
        var tail = e.OutputTail!.Split('\n');
        Assert.Equal(ConditionWaitStrategyTailLines, tail.Length);
        Assert.Equal("line-10", tail[0]);
        Assert.Equal("line-29", tail[^1]);
        Assert.Contains("line-29", e.Message);
    }

    [Fact]
    public async Task ForPort_DefaultTimeout_Is60Seconds()
    {
        var container = new FakeProbingContainer();
        var wait = Wait.ForPort(80).WaitAsync(container, _time, default);
        await _time.NextPauseAsync();

        _time.Clock.Advance(TimeSpan.FromSeconds(59));
        Assert.False(wait.IsCompleted);
        _time.Clock.Advance(TimeSpan.FromSeconds(1));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => wait);
        Assert.Contains("after 60 s", e.Message);
    }

    [Fact]
    public async Task ForPort_ContainerExits_FailsAtOnceWithExitCodeAndTail()
    {
        var container = new FakeProbingContainer();
        container.Log("FATAL: could not bind", LogStream.Stderr);
        var wait = Wait.ForPort(5432).WaitAsync(container, _time, default);
        await _time.NextPauseAsync();

        container.Exit(3);

        // No clock advance: the exit alone ends the wait.
        var e = await Assert.ThrowsAsync<ContainerExitedException>(() => wait);
        Assert.Equal(3, e.ExitCode);
        Assert.False(e.OomKilled);
        Assert.Contains("exited with code 3", e.Message);
        Assert.Contains("port 5432 accepting connections", e.Message);
        Assert.Contains("FATAL: could not bind", e.Message);
    }

    [Fact]
    public async Task ForPort_ContainerOomKilled_SaysSo()
    {
        var container = new FakeProbingContainer();
        container.Exit(137, oomKilled: true);

        var e = await Assert.ThrowsAsync<ContainerExitedException>(() => Wait.ForPort(80).WaitAsync(container, _time, default));

        Assert.True(e.OomKilled);
        Assert.Contains("OOM killer", e.Message);
    }

    [Fact]
    public async Task ForPort_Cancelled_ThrowsOperationCanceled()
    {
        var container = new FakeProbingContainer();
        using var cts = new CancellationTokenSource();
        var wait = Wait.ForPort(80).WaitAsync(container, _time, cts.Token);
        await _time.NextPauseAsync();

        await cts.CancelAsync();

        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
        Assert.Equal(cts.Token, e.CancellationToken);
    }

    [Fact]
    public async Task ForPort_AlreadyCancelled_DoesNotProbe()
    {
        var container = new FakeProbingContainer { PortOpen = true };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Wait.ForPort(80).WaitAsync(container, _time, new CancellationToken(true)));

        Assert.Equal(0, container.PortProbes);
    }

    [Fact]
    public async Task ForPort_WithoutProbes_ConnectsToThePublishedEndpoint()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var container = new FakeContainer();
        container.MapPort(6379, new ContainerEndpoint("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port));

        await Wait.ForPort(6379).WaitAsync(container, _time, default);

        using var accepted = await listener.AcceptSocketAsync();
        Assert.True(accepted.Connected);
    }

    [Fact]
    public async Task ForPort_WithoutProbesAndNothingListening_TimesOutNamingTheEndpoint()
    {
        var container = new FakeContainer();
        var closedPort = ClosedPort();
        container.MapPort(6379, new ContainerEndpoint("127.0.0.1", closedPort));

        var wait = Wait.ForPort(6379).WithTimeout(TimeSpan.FromSeconds(1)).WaitAsync(container, _time, default);
        await _time.NextPauseAsync();
        _time.Clock.Advance(TimeSpan.FromSeconds(1));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => wait);
        Assert.Contains($"127.0.0.1:{closedPort}", e.Message);
    }

    [Fact]
    public async Task ForPort_UnpublishedPortWithoutProbes_FailsAtOnce()
    {
        var container = new FakeContainer();

        await Assert.ThrowsAsync<ArgumentException>(() => Wait.ForPort(6379).WaitAsync(container, _time, default));
    }

    [Fact]
    public async Task ForLogMessage_ReactsToTheLineAsItArrives()
    {
        var container = new FakeContainer();
        container.Log("starting");
        var wait = Wait.ForLogMessage("Ready to accept connections").WaitAsync(container, _time, default);

        container.Log("loading");
        Assert.False(wait.IsCompleted);
        container.Log("* Ready to accept connections tcp");

        // The clock never moves: the line alone completes the wait, no polling.
        await wait;
    }

    [Fact]
    public async Task ForLogMessage_Times_WaitsForThatManyMatches()
    {
        var container = new FakeContainer();
        container.Log("database system is ready to accept connections");
        var wait = Wait.ForLogMessage("ready to accept connections", times: 2).WaitAsync(container, _time, default);

        container.Log("database system is shut down");
        await Task.Yield();
        Assert.False(wait.IsCompleted);
        container.Log("database system is ready to accept connections");

        await wait;
    }

    [Fact]
    public async Task ForLogMessage_ContainerExitedAfterWritingTheLine_IsReady()
    {
        var container = new FakeContainer();
        container.Log("done");
        container.Exit(0);

        // Judged from the complete output: the line is there, so the exit is no failure.
        var error = await Record.ExceptionAsync(() => Wait.ForLogMessage("^done$").WaitAsync(container, _time, default));

        Assert.Null(error);
    }

    [Fact]
    public async Task ForLogMessage_ContainerExitsWithoutTheLine_FailsAtOnce()
    {
        var container = new FakeContainer();
        var wait = Wait.ForLogMessage("ready").WaitAsync(container, _time, default);

        container.Log("error: no config");
        container.Exit(1);

        var e = await Assert.ThrowsAsync<ContainerExitedException>(() => wait);
        Assert.Equal(1, e.ExitCode);
        Assert.Contains("a log line matching /ready/", e.Message);
        Assert.Contains("error: no config", e.Message);
    }

    [Fact]
    public async Task ForLogMessage_Timeout_SaysHowManyMatchesWereSeen()
    {
        var container = new FakeContainer();
        container.Log("ready");
        var wait = Wait.ForLogMessage("ready", 3).WithTimeout(TimeSpan.FromSeconds(2)).WaitAsync(container, _time, default);

        _time.Clock.Advance(TimeSpan.FromSeconds(2));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => wait);
        Assert.Equal("3 log lines matching /ready/", e.Condition);
        Assert.Contains("1 of 3 matching lines seen", e.Message);
    }

    [Fact]
    public async Task ForCommand_RetriesUntilExitCodeZero()
    {
        var container = new FakeContainer();
        var attempts = 0;
        container.OnExec = _ => ++attempts < 3
            ? new ExecResult(2, "", "no response")
            : new ExecResult(0, "accepting connections", "");

        var wait = Wait.ForCommand("pg_isready", "-h", "127.0.0.1").WaitAsync(container, _time, default);
        var pauses = await _time.RunPausesUntilAsync(wait);

        await wait;
        Assert.Equal(3, attempts);
        Assert.Equal(2, pauses.Count);
        Assert.All(container.Execs, argv => Assert.Equal(["pg_isready", "-h", "127.0.0.1"], argv));
    }

    [Fact]
    public async Task ForCommand_Timeout_ReportsLastExitCodeAndOutput()
    {
        var container = new FakeContainer { OnExec = _ => new ExecResult(2, "", "no response") };

        var wait = Wait.ForCommand("pg_isready").WithTimeout(TimeSpan.FromSeconds(1)).WaitAsync(container, _time, default);
        await _time.NextPauseAsync();
        _time.Clock.Advance(TimeSpan.FromSeconds(1));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => wait);
        Assert.Equal("command 'pg_isready' exiting with 0", e.Condition);
        Assert.Contains("exit code 2: no response", e.Message);
    }

    [Fact]
    public async Task ForCommand_ExecFailsBecauseContainerExited_ReportsTheExit()
    {
        var container = new FakeContainer();
        container.OnExec = _ =>
        {
            container.Exit(9);
            throw new InvalidOperationException("container is not running");
        };

        var e = await Assert.ThrowsAsync<ContainerExitedException>(() => Wait.ForCommand("true").WaitAsync(container, _time, default));

        Assert.Equal(9, e.ExitCode);
    }

    [Fact]
    public async Task ForFile_UsesTheProbeWhenTheContainerHasOne()
    {
        var container = new FakeProbingContainer();
        var wait = Wait.ForFile("/run/app.pid").WaitAsync(container, _time, default);
        var pause = await _time.NextPauseAsync();

        container.FileExists = true;
        _time.Clock.Advance(pause);

        await wait;
        Assert.Equal(2, container.FileProbes);
        Assert.Empty(container.Execs);
    }

    [Fact]
    public async Task ForFile_WithoutProbes_RunsTestE()
    {
        var container = new FakeContainer { OnExec = _ => new ExecResult(0, "", "") };

        await Wait.ForFile("/run/app.pid").WaitAsync(container, _time, default);

        Assert.Equal(["test", "-e", "/run/app.pid"], Assert.Single(container.Execs));
    }

    [Fact]
    public async Task And_WaitsForEveryCondition()
    {
        var container = new FakeProbingContainer();
        var strategy = Wait.ForLogMessage("ready").And(Wait.ForFile("/ready"));
        var wait = strategy.WaitAsync(container, _time, default);

        container.Log("ready");
        var pause = await _time.NextPauseAsync(); // the log line was seen; now on the file
        Assert.False(wait.IsCompleted);
        container.FileExists = true;
        _time.Clock.Advance(pause);

        await wait;
        Assert.Equal("a log line matching /ready/ and file /ready existing", strategy.ToString());
    }

    [Fact]
    public async Task And_WithTimeout_BoundsTheWholeWaitAndNamesTheUnmetCondition()
    {
        var container = new FakeProbingContainer();
        container.Log("ready");
        var wait = Wait.ForLogMessage("ready").And(Wait.ForPort(80)).WithTimeout(TimeSpan.FromSeconds(3)).WaitAsync(container, _time, default);
        await _time.NextPauseAsync();

        _time.Clock.Advance(TimeSpan.FromSeconds(3));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => wait);
        Assert.Equal("port 80 accepting connections", e.Condition);
        Assert.Contains("after 3 s", e.Message);
    }

    [Fact]
    public void And_FlattensChains()
    {
        var strategy = Wait.ForPort(1).And(Wait.ForPort(2)).And(Wait.ForPort(3));

        Assert.Equal("port 1 accepting connections and port 2 accepting connections and port 3 accepting connections", strategy.ToString());
        Assert.Equal([1, 2, 3], strategy.PortsUsed);
    }

    [Fact]
    public void WithTimeout_ReturnsACopyAndLeavesTheOriginal()
    {
        var original = Wait.ForPort(80);

        var bounded = original.WithTimeout(TimeSpan.FromSeconds(5));

        Assert.NotSame(original, bounded);
        Assert.Null(original.Timeout);
        Assert.Equal(TimeSpan.FromSeconds(5), bounded.Timeout);
        Assert.Equal(original.ToString(), bounded.ToString());
    }

    [Fact]
    public void Factories_RejectBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Wait.ForPort(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Wait.ForPort(65536));
        Assert.Throws<ArgumentOutOfRangeException>(() => Wait.ForLogMessage("x", 0));
        Assert.ThrowsAny<ArgumentException>(() => Wait.ForLogMessage("("));
        Assert.Throws<ArgumentException>(() => Wait.ForHttp("health", 80));
        Assert.Throws<ArgumentException>(() => Wait.ForCommand());
        Assert.Throws<ArgumentException>(() => Wait.ForFile("relative"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Wait.ForPort(80).WithTimeout(TimeSpan.Zero));
    }

    private const int ConditionWaitStrategyTailLines = IsoTest.Waits.ConditionWaitStrategy.TailLines;

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task UserWritten_IsPolledWithTheSameBackoffUntilItSaysReady()
    {
        var container = new FakeContainer();
        var strategy = new ReadyOnCall(3);
        var wait = strategy.WaitAsync(container, _time, default);

        var pauses = new List<TimeSpan> { await _time.NextPauseAsync() };
        _time.Clock.Advance(pauses[^1]);
        pauses.Add(await _time.NextPauseAsync());
        _time.Clock.Advance(pauses[^1]);
        await wait;

        Assert.Equal(3, strategy.Calls);
        Assert.Same(container, strategy.LastContainer);
        Assert.Equal([TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(2)], pauses);
    }

    [Fact]
    public async Task UserWritten_NeverReady_TimesOutNamingItsDescription()
    {
        var container = new FakeContainer();
        container.Log("still booting");
        var wait = new ReadyOnCall(int.MaxValue).WithTimeout(TimeSpan.FromSeconds(2)).WaitAsync(container, _time, default);
        await _time.NextPauseAsync(); // the first check said "not yet"
        _time.Clock.Advance(TimeSpan.FromSeconds(2));

        var e = await Assert.ThrowsAsync<WaitTimeoutException>(() => wait);
        Assert.Equal("the app answering on call 2147483647", e.Condition);
        Assert.Contains("not ready yet", e.Message);
        Assert.Contains("still booting", e.Message);
    }

    [Fact]
    public async Task UserWritten_ContainerExits_FailsAtOnce()
    {
        var container = new FakeContainer();
        container.Exit(2);

        var e = await Assert.ThrowsAsync<ContainerExitedException>(() => new ReadyOnCall(int.MaxValue).WaitAsync(container, _time, default));

        Assert.Equal(2, e.ExitCode);
    }

    [Fact]
    public async Task UserWritten_CombinesWithTheBuiltInOnes()
    {
        var container = new FakeContainer();
        var mine = new ReadyOnCall(1);
        var wait = Wait.ForLogMessage("up").And(mine).WaitAsync(container, _time, default);
        Assert.Equal(0, mine.Calls);

        container.Log("up");
        await wait;

        Assert.Equal(1, mine.Calls);
        Assert.Equal("a log line matching /up/ and the app answering on call 1", Wait.ForLogMessage("up").And(mine).ToString());
    }

    /// <summary>What a user writes: one check, and a description.</summary>
    private sealed class ReadyOnCall(int readyOn) : WaitStrategy
    {
        public int Calls { get; private set; }

        public IContainer? LastContainer { get; private set; }

        public override string ToString() => $"the app answering on call {readyOn}";

        protected override Task<bool> UntilAsync(IContainer container, CancellationToken cancellationToken)
        {
            LastContainer = container;
            return Task.FromResult(++Calls >= readyOn);
        }
    }
}
