using IsoTest.Server.Api;
using IsoTest.Server.Containers;
using IsoTest.Server.Images;

namespace IsoTest.Server.Tests;

/// <summary>
/// The run bookkeeping behind `wait`, on a container the test ends by hand: the interleaving that made a
/// `wait?condition=not-running` hang in CI cannot be timed with a real container, so it is set up step by step.
/// </summary>
public sealed class ServerContainerTests
{
    [Fact]
    public async Task WaitNotRunning_DuringARun_CompletesWithItsExit()
    {
        var inner = new HandExitedContainer();
        var container = await StartedAsync(inner);

        var wait = container.ExitOfTheRunningRun();
        Assert.False(wait.IsCompleted);
        inner.Exit(3);

        Assert.Equal(3, await wait.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task WaitNotRunning_AfterTheRunEnded_WhileTheEngineStillSaysRunning_IsThatRunsExit_NotTheNextRunsExit()
    {
        // The order CI hit: the engine's container still reads Running, but the run has ended and the next run's exit
        // is already the pending one. Deciding from State then took that next exit, which never comes.
        var inner = new HandExitedContainer();
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var container = await StartedAsync(inner, ended);
        inner.Exit(3, keepRunningState: true);
        await ended.Task.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(container.Running);
        Assert.False(container.NextExit.IsCompleted); // the next run's: what the old code waited on
        Assert.Equal(3, await container.ExitOfTheRunningRun().WaitAsync(TimeSpan.FromSeconds(10)));
    }

    private static async Task<ServerContainer> StartedAsync(HandExitedContainer inner, TaskCompletionSource? ended = null)
    {
        var image = new ResolvedImage(["test:latest"], "sha256:0", DateTimeOffset.UnixEpoch, 0, null, [], null, b => b);
        var container = new ServerContainer("c0ffee", "test", new CreateContainerRequest(), image, inner, DateTimeOffset.UnixEpoch);
        await container.StartAsync(_ =>
        {
            ended?.TrySetResult();
            return Task.CompletedTask;
        }, TimeProvider.System, CancellationToken.None);
        return container;
    }

    /// <summary>An <see cref="IContainer"/> whose run the test ends; everything the bookkeeping does not use throws.</summary>
    private sealed class HandExitedContainer : IContainer
    {
        private readonly TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Id => "c0ffee";

        public string Name => "test";

        public ContainerState State { get; private set; } = ContainerState.Created;

        public ContainerSpec Spec { get; } = new ContainerBuilder().FromHost().WithCommand("true").Build();

        public int? ExitCode { get; private set; }

        public bool OomKilled => false;

        /// <summary>Ends the run; with <paramref name="keepRunningState"/> State still says Running afterwards.</summary>
        public void Exit(int code, bool keepRunningState = false)
        {
            ExitCode = code;
            if (!keepRunningState)
            {
                State = ContainerState.Exited;
            }

            _exit.TrySetResult(code);
        }

        public Task StartAsync(CancellationToken cancellationToken = default)
        {
            State = ContainerState.Running;
            return Task.CompletedTask;
        }

        public Task<int> WaitForExitAsync(CancellationToken cancellationToken = default) => _exit.Task.WaitAsync(cancellationToken);

        public ContainerEndpoint GetEndpoint(int containerPort) => throw new NotSupportedException();

        public Task<ExecResult> ExecAsync(IReadOnlyList<string> command, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public IReadOnlyList<LogLine> GetLogs() => [];

        public IAsyncEnumerable<LogLine> FollowLogsAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<ContainerStats> GetStatsAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
