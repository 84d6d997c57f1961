using IsoTest.Server.Api;
using IsoTest.Server.Images;

namespace IsoTest.Server.Containers;

/// <summary>
/// One container as the API sees it: Docker's id, name, create request and timestamps around the
/// engine's <see cref="IContainer"/>. Each start opens a new "run" whose exit completes <see cref="NextExit"/>,
/// so `wait?condition=next-exit` registered before a start sees that start's exit.
/// </summary>
internal sealed class ServerContainer
{
    private readonly Lock _lock = new();
    private TaskCompletionSource<int> _nextExit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _removed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _startFailed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ServerContainer(string id, string name, CreateContainerRequest request, ResolvedImage image, IContainer container, DateTimeOffset created)
    {
        Id = id;
        Name = name;
        Request = request;
        Image = image;
        Inner = container;
        Created = created;
    }

    public string Id { get; }

    /// <summary>Without Docker's leading slash.</summary>
    public string Name { get; set; }

    /// <summary>The create request, as changed by network connects and disconnects since.</summary>
    public CreateContainerRequest Request { get; private set; }

    public ResolvedImage Image { get; }

    public IContainer Inner { get; private set; }

    /// <summary>True once files were copied in (docker cp): a container made again would lose them.</summary>
    public bool FilesCopiedIn { get; set; }

    /// <summary>Swaps in the engine container made again for a changed request (a network connect before start).</summary>
    public void Replace(CreateContainerRequest request, IContainer inner)
    {
        Request = request;
        Inner = inner;
    }

    public DateTimeOffset Created { get; }

    public DateTimeOffset? StartedAt { get; private set; }

    public DateTimeOffset? FinishedAt { get; private set; }

    public bool AutoRemove => Request.HostConfig?.AutoRemove == true;

    public bool Removing { get; set; }

    /// <summary>Completes with the exit code of the current run, or of the next one when none is running.</summary>
    public Task<int> NextExit
    {
        get
        {
            lock (_lock)
            {
                return _nextExit.Task;
            }
        }
    }

    /// <summary>
    /// What `wait?condition=not-running` waits for: the running run's exit, else the last exit code at once. Decided
    /// under the lock WatchAsync ends a run under: reading <see cref="Running"/> and then <see cref="NextExit"/> let a
    /// fast exit end the run between the two reads, and the wait got the next run's exit, which never came (seen in
    /// CI with `sh -c "exit 3"`).
    /// </summary>
    public Task<int> ExitOfTheRunningRun()
    {
        lock (_lock)
        {
            // A run is on from a successful start (StartedAt set, FinishedAt cleared) until WatchAsync sets FinishedAt.
            var running = StartedAt is not null && FinishedAt is null;
            return running && !Removing ? _nextExit.Task : Task.FromResult(Inner.ExitCode ?? 0);
        }
    }

    public Task Removed => _removed.Task;

    /// <summary>Completes when a start failed because the command could not be executed.</summary>
    public Task StartFailed => _startFailed.Task;

    /// <summary>dockerd's exit code for the last start that could not execute its command (127 or 126), else null.</summary>
    public int? StartFailureExitCode { get; private set; }

    /// <summary>Docker's status word.</summary>
    public string Status => Removing ? "removing" : Inner.State switch
    {
        ContainerState.Created => "created",
        ContainerState.Running => "running",
        ContainerState.Exited => "exited",
        _ => "dead",
    };

    public bool Running => Inner.State == ContainerState.Running && !Removing;

    /// <summary>Starts the engine container and watches this run's exit; <paramref name="exited"/> runs once it exited.</summary>
    public async Task StartAsync(Func<ServerContainer, Task> exited, TimeProvider clock, CancellationToken cancellationToken)
    {
        try
        {
            await Inner.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ExecFailedException e)
        {
            // dockerd: a command that cannot be executed ends the run at once with 127 (not found) or 126, so
            // waits return, attaches close and --rm removes the container; the client gets the error from start.
            TaskCompletionSource<int> failed;
            lock (_lock)
            {
                FinishedAt = clock.GetUtcNow();
                StartFailureExitCode = e.Reason == ExecFailure.NotFound ? 127 : 126;
                failed = _nextExit;
                _nextExit = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            failed.TrySetResult(StartFailureExitCode.Value);
            _startFailed.TrySetResult();
            _ = exited(this);
            throw;
        }

        TaskCompletionSource<int> run;
        lock (_lock)
        {
            StartedAt = clock.GetUtcNow();
            FinishedAt = null;
            run = _nextExit;
        }

        _ = WatchAsync(run, exited, clock);
    }

    private async Task WatchAsync(TaskCompletionSource<int> run, Func<ServerContainer, Task> exited, TimeProvider clock)
    {
        var code = await Inner.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        lock (_lock)
        {
            FinishedAt = clock.GetUtcNow();
            _nextExit = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        run.TrySetResult(code);
        await exited(this).ConfigureAwait(false);
    }

    public void MarkRemoved()
    {
        lock (_lock)
        {
            _nextExit.TrySetResult(Inner.ExitCode ?? 0);
        }

        _removed.TrySetResult();
    }
}
