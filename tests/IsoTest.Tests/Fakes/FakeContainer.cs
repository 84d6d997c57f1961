using System.Runtime.CompilerServices;

namespace IsoTest.Tests.Fakes;

/// <summary>
/// A container the test drives by hand: push log lines, make it exit, script exec results.
/// Used where a real backend would add nothing to what is under test (the waits, the builder).
/// </summary>
internal class FakeContainer : IContainer
{
    private readonly object _gate = new();
    private readonly List<LogLine> _logs = [];
    private readonly TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<int, ContainerEndpoint> _endpoints = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposals;

    public FakeContainer(ContainerSpec? spec = null)
    {
        Spec = spec ?? new ContainerBuilder().FromHost().WithCommand("true").Build();
    }

    public string Id { get; } = "f4ce0000";

    public string Name => "fake";

    public ContainerState State { get; private set; } = ContainerState.Created;

    public ContainerSpec Spec { get; }

    public int? ExitCode { get; private set; }

    public bool OomKilled { get; private set; }

    /// <summary>What each exec returns; null makes exec throw.</summary>
    public Func<IReadOnlyList<string>, ExecResult>? OnExec { get; set; }

    public List<IReadOnlyList<string>> Execs { get; } = [];

    /// <summary>Thrown by <see cref="StartAsync"/> when set.</summary>
    public Exception? StartFailure { get; set; }

    /// <summary>Thrown by <see cref="DisposeAsync"/> when set.</summary>
    public Exception? DisposeFailure { get; set; }

    public int Disposals => _disposals;

    public void MapPort(int containerPort, ContainerEndpoint endpoint) => _endpoints[containerPort] = endpoint;

    public void Log(string text, LogStream stream = LogStream.Stdout)
    {
        lock (_gate)
        {
            _logs.Add(new LogLine(DateTimeOffset.UnixEpoch, stream, text));
            Signal();
        }
    }

    public void Exit(int code, bool oomKilled = false)
    {
        lock (_gate)
        {
            ExitCode = code;
            OomKilled = oomKilled;
            State = ContainerState.Exited;
            Signal();
        }

        _exit.TrySetResult(code);
    }

    public ContainerEndpoint GetEndpoint(int containerPort) =>
        _endpoints.TryGetValue(containerPort, out var endpoint)
            ? endpoint
            : throw new ArgumentException($"Port {containerPort} was not published.", nameof(containerPort));

    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (StartFailure is { } failure)
        {
            throw failure;
        }

        State = ContainerState.Running;
        return Task.CompletedTask;
    }

    public Task<ExecResult> ExecAsync(IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            Execs.Add(command);
        }

        return Task.FromResult(OnExec?.Invoke(command) ?? throw new InvalidOperationException("This fake was given no exec result."));
    }

    public IReadOnlyList<LogLine> GetLogs()
    {
        lock (_gate)
        {
            return [.. _logs];
        }
    }

    public async IAsyncEnumerable<LogLine> FollowLogsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var next = 0;
        while (true)
        {
            LogLine? line = null;
            Task changed;
            lock (_gate)
            {
                if (next < _logs.Count)
                {
                    line = _logs[next++];
                }
                else if (ExitCode is not null)
                {
                    yield break;
                }

                changed = _changed.Task;
            }

            if (line is not null)
            {
                yield return line;
            }
            else
            {
                await changed.WaitAsync(cancellationToken);
            }
        }
    }

    public Task<int> WaitForExitAsync(CancellationToken cancellationToken = default) => _exit.Task.WaitAsync(cancellationToken);

    public Task StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        Exit(143);
        return Task.CompletedTask;
    }

    public Task<ContainerStats> GetStatsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(new ContainerStats(null, TimeSpan.Zero));

    public ValueTask DisposeAsync()
    {
        Interlocked.Increment(ref _disposals);
        if (DisposeFailure is { } failure)
        {
            throw failure;
        }

        if (ExitCode is null)
        {
            Exit(137);
        }

        State = ContainerState.Removed;
        return ValueTask.CompletedTask;
    }

    // Caller holds _gate.
    private void Signal()
    {
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }
}

/// <summary>A fake container that also answers the backend probes, as the engine's containers do.</summary>
internal sealed class FakeProbingContainer(ContainerSpec? spec = null) : FakeContainer(spec), IContainerProbes
{
    private int _portProbes;
    private int _fileProbes;

    public volatile bool PortOpen;

    /// <summary>The cap a polling wait uses between probes; 50 ms unless a test says otherwise.</summary>
    public TimeSpan MaxProbeInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    public volatile bool FileExists;

    /// <summary>Whether an HTTP wait asks the port probe before sending requests; true, as on the engine.</summary>
    public bool PortProbeIsCheap { get; init; } = true;

    public int PortProbes => _portProbes;

    public int FileProbes => _fileProbes;

    public Task<bool> IsPortOpenAsync(int port, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Interlocked.Increment(ref _portProbes);
        return Task.FromResult(PortOpen);
    }

    public Task<bool> FileExistsAsync(string path, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Interlocked.Increment(ref _fileProbes);
        return Task.FromResult(FileExists);
    }
}
