using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Native;
using IsoTest.Engine.Process;

namespace IsoTest.Engine.Containers;

/// <summary>
/// A container's one state machine: created → running → exited (→ running again on a restart) → removed.
/// A run ends in exactly one place (<see cref="WatchAsync"/>): once the agent reported the exit and the
/// output reached EOF, the state becomes exited and <see cref="WaitForExitAsync"/> completes, together.
/// Start, stop and remove are serialised, so two of them never interleave on one container.
/// </summary>
internal sealed class ContainerLifecycle(EngineContext context, string id, ContainerSpec spec, ContainerSetup setup, Payload payload, PublishedPorts ports)
{
    /// <summary>How long a finished run waits for its output to reach EOF: a leftover process may hold the pipes open.</summary>
    private static readonly TimeSpan LogDrainLimit = TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _lock = new();
    private readonly List<LogLine> _earlierRuns = [];
    private TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ContainerRun? _run;
    private ContainerStats? _finalStats;
    private CgroupStats? _exitCgroupStats;

    public ContainerState State { get; private set; } = ContainerState.Created;

    /// <summary>When the command started (a <see cref="TimeProvider"/> timestamp), null before; healthchecks count from it.</summary>
    public long? StartedAt { get; private set; }

    public int? ExitCode { get; private set; }

    public bool OomKilled { get; private set; }

    /// <summary>The current run's output (logs of earlier runs are kept in <see cref="Logs"/>).</summary>
    public ContainerLogs? CurrentLogs => _run?.Logs;

    /// <summary>Every line written, over every run.</summary>
    public IReadOnlyList<LogLine> Logs
    {
        get
        {
            lock (_lock)
            {
                return [.. _earlierRuns, .. _run?.Logs.Snapshot() ?? []];
            }
        }
    }

    /// <summary>Lines of earlier runs (a restarted container's), oldest first.</summary>
    public IReadOnlyList<LogLine> EarlierLogs
    {
        get
        {
            lock (_lock)
            {
                return [.. _earlierRuns];
            }
        }
    }

    public string Tail() => _run?.Logs.Tail() ?? "";

    /// <summary>The agent of a running container; else the exception that says it is not running.</summary>
    public AgentClient RunningAgent() =>
        _run is { } run && State == ContainerState.Running && !run.Agent.Gone.Task.IsCompleted
            ? run.Agent
            : throw new InvalidOperationException($"Container {id} is not running (state {State}).");

    /// <summary>The agent while the container is set up (created, or running), else null: its root exists only then.</summary>
    public AgentClient? AgentIfSetUp => _run is { } run && State is ContainerState.Created or ContainerState.Running && !run.Agent.Gone.Task.IsCompleted ? run.Agent : null;

    /// <summary>The agent when running, else null (probes and forwarders ask without failing).</summary>
    public AgentClient? AgentIfRunning => _run is { } run && State == ContainerState.Running ? run.Agent : null;

    /// <summary>Sets the container up (its cgroup and first run); with <paramref name="start"/> its command starts too.</summary>
    public async Task CreateAsync(bool start, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            setup.CreateCgroup();
            await LaunchAsync(start, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await TearDownAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Starts a created container, or starts an exited one again (a fresh run: same id, name, cgroup and host ports).</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            switch (State)
            {
                case ContainerState.Created when _run is { } run:
                    run.Agent.Start(payload);
                    await AwaitStartedAsync(run, cancellationToken).ConfigureAwait(false);
                    break;
                case ContainerState.Exited:
                    await RestartAsync(cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    throw new InvalidOperationException($"Container {id} is {State}; only a created or exited container can be started.");
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task RestartAsync(CancellationToken cancellationToken)
    {
        // The finished run's agent is gone (init exits with its payload); its output stays in the logs.
        var previous = _run!;
        await previous.Agent.Gone.Task.ConfigureAwait(false);
        lock (_lock)
        {
            _earlierRuns.AddRange(previous.Logs.Snapshot());
            _run = null;
            _exit = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            (ExitCode, OomKilled, _finalStats, _exitCgroupStats) = (null, false, null, null);
            State = ContainerState.Created;
        }

        setup.DetachNetworks(); // the new run joins them afresh, under the same names
        using (context.BeginCreate(spec))
        {
            await LaunchAsync(start: true, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task LaunchAsync(bool start, CancellationToken cancellationToken)
    {
        var run = await setup.LaunchAsync(start ? payload : null, cancellationToken).ConfigureAwait(false);
        _run = run;
        _ = WatchAsync(run);
        if (start)
        {
            await AwaitStartedAsync(run, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task AwaitStartedAsync(ContainerRun run, CancellationToken cancellationToken)
    {
        try
        {
            await run.Agent.Started.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (AgentException e)
        {
            throw AgentErrors.ExecFailed(id, e.Error);
        }
        catch (AgentGoneException)
        {
            throw new ContainerStartException(id, $"Container {id}: the init agent exited before the command started.", run.Logs.Tail());
        }

        lock (_lock)
        {
            if (State == ContainerState.Created)
            {
                State = ContainerState.Running;
                StartedAt = context.Time.GetTimestamp();
            }
        }

        ports.Start();
    }

    /// <summary>The one place a run ends: agent's exit report, then the output drained (bounded), then state and waiters together.</summary>
    private async Task WatchAsync(ContainerRun run)
    {
        int status = await run.Agent.Exited.Task.ConfigureAwait(false);
        var stats = setup.Cgroup is { } cgroup ? context.Cgroups.ReadStats(cgroup) : null;
        using (var drained = new CancellationTokenSource())
        {
            await Task.WhenAny(run.Logs.Completion.Task, Task.Delay(LogDrainLimit, context.Time, drained.Token)).ConfigureAwait(false);
            await drained.CancelAsync().ConfigureAwait(false); // no 5 s timer left behind per exit
        }

        int code = AgentErrors.ExitCode(status);
        TaskCompletionSource<int> exit;
        lock (_lock)
        {
            if (_run != run)
            {
                return;
            }

            _exitCgroupStats = stats;
            OomKilled = stats?.OomKills > 0;
            ExitCode = code;
            if (State is ContainerState.Created or ContainerState.Running)
            {
                State = ContainerState.Exited;
            }

            exit = _exit;
        }

        exit.TrySetResult(code);
    }

    public Task<int> WaitForExitAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return _exit.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>SIGTERM, then after <paramref name="timeout"/> SIGKILL; returns once the state says exited.</summary>
    /// <param name="timeout">How long after <paramref name="signal"/> before SIGKILL.</param>
    /// <param name="signal">The first signal: the image's STOPSIGNAL, else SIGTERM.</param>
    /// <param name="cancellationToken">Ends the wait (the container is then left as it is).</param>
    public async Task StopAsync(TimeSpan timeout, int signal, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_run is not { } run || State != ContainerState.Running)
            {
                return;
            }

            var exit = WaitForExitAsync(CancellationToken.None);
            run.Agent.Signal(signal);
            try
            {
                await exit.WaitAsync(timeout, context.Time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                run.Agent.Kill();
                await exit.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<ContainerStats> GetStatsAsync(CancellationToken cancellationToken)
    {
        if (_finalStats is { } final)
        {
            return final;
        }

        var run = _run;
        if (run is not null && (run.Agent.Gone.Task.IsCompleted || State is ContainerState.Exited))
        {
            // After exit the shim's report (CPU time of every process) is moments away: wait for it.
            return await FinalStatsAsync(run).WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        var cg = setup.Cgroup is { } cgroup ? context.Cgroups.ReadStats(cgroup) : null;
        var cpu = cg?.CpuTime ?? run?.Agent.InitTreeCpuTime();
        return new ContainerStats(cg?.PeakMemoryBytes, cpu ?? TimeSpan.Zero);
    }

    private async Task<ContainerStats> FinalStatsAsync(ContainerRun run)
    {
        var reaped = await run.Agent.Gone.Task.ConfigureAwait(false);

        // Read once at exit (for the OOM flag) already: a peak no longer grows once the command is gone.
        var cg = _exitCgroupStats ?? (setup.Cgroup is { } cgroup ? context.Cgroups.ReadStats(cgroup) : null);
        return _finalStats = new ContainerStats(cg?.PeakMemoryBytes, cg?.CpuTime ?? reaped?.CpuTime ?? TimeSpan.Zero);
    }

    /// <summary>Kills every process, waits until the agent is gone, then removes ports and cgroup. Idempotent; safe on a half-made container.</summary>
    public async Task RemoveAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            await TearDownAsync().ConfigureAwait(false);
            lock (_lock)
            {
                State = ContainerState.Removed;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task TearDownAsync()
    {
        await ports.DisposeAsync().ConfigureAwait(false);
        if (_run is { } run && await run.EndAsync().ConfigureAwait(false))
        {
            // Keep the figures before the cgroup goes; an agent that never went away has none to give.
            await FinalStatsAsync(run).ConfigureAwait(false);
        }

        setup.DestroyCgroup();
        setup.DetachNetworks();
    }
}
