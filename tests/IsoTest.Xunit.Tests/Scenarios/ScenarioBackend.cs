using System.Runtime.CompilerServices;

namespace IsoTest.Xunit.Scenarios;

/// <summary>A fake backend: containers are objects that record their life in <see cref="Recorder"/>.</summary>
public sealed class ScenarioBackend : IContainerBackend
{
    public string Name => "scenario";

    /// <summary>Runs inside <see cref="IContainer.StartAsync"/>; may throw or block.</summary>
    public Func<CancellationToken, Task>? OnStart { get; init; }

    public Task<IContainer> CreateAsync(ContainerSpec spec, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var container = new ScenarioContainer(spec, this);
        Recorder.Add("created", container.Definition, container.Id);
        return Task.FromResult<IContainer>(container);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

public sealed class ScenarioContainer(ContainerSpec spec, ScenarioBackend backend) : IContainer
{
    private readonly Lock _gate = new();
    private readonly List<LogLine> _logs = [];
    private int _disposed;

    public string Id { get; } = Guid.NewGuid().ToString("N");

    public string Name => Spec.Name ?? Id;

    public string Definition => Spec.Labels.TryGetValue("isotest.fixture", out var d) ? d.Split('.', '+')[^1] : "?";

    public ContainerState State { get; private set; } = ContainerState.Created;

    public ContainerSpec Spec { get; } = spec;

    public int? ExitCode { get; private set; }

    public bool OomKilled => false;

    /// <summary>The container "writes" a line of output.</summary>
    public void Write(string text)
    {
        lock (_gate)
        {
            _logs.Add(new LogLine(DateTimeOffset.UtcNow, LogStream.Stdout, text));
        }
    }

    public ContainerEndpoint GetEndpoint(int containerPort) => new("127.0.0.1", 40000 + containerPort);

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        Recorder.Add("starting", Definition, Id);
        if (backend.OnStart is { } onStart)
        {
            await onStart(cancellationToken);
        }

        State = ContainerState.Running;
        Write($"{Definition} is ready");
        Recorder.Add("started", Definition, Id);
    }

    public Task<ExecResult> ExecAsync(IReadOnlyList<string> command, CancellationToken cancellationToken = default) =>
        Task.FromResult(new ExecResult(0, "", ""));

    public IReadOnlyList<LogLine> GetLogs()
    {
        lock (_gate)
        {
            return [.. _logs];
        }
    }

    public async IAsyncEnumerable<LogLine> FollowLogsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var line in GetLogs())
        {
            yield return line;
        }

        await Task.CompletedTask;
    }

    public Task<int> WaitForExitAsync(CancellationToken cancellationToken = default) => Task.FromResult(ExitCode ?? 0);

    public Task StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ExitCode = 143;
        State = ContainerState.Exited;
        return Task.CompletedTask;
    }

    public Task<ContainerStats> GetStatsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(new ContainerStats(null, TimeSpan.Zero));

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            State = ContainerState.Removed;
            Recorder.Add("disposed", Definition, Id);
        }

        return ValueTask.CompletedTask;
    }
}
