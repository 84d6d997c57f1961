namespace IsoTest;

/// <summary>A running (or finished) container. Dispose stops and removes it; dispose is idempotent.</summary>
public interface IContainer : IAsyncDisposable
{
    /// <summary>Unique id (hex).</summary>
    string Id { get; }

    /// <summary>Unique name.</summary>
    string Name { get; }

    /// <summary>Where the container is in its life.</summary>
    ContainerState State { get; }

    /// <summary>The spec it was created from.</summary>
    ContainerSpec Spec { get; }

    /// <summary>The exit code of its command once it has exited (128 + signal when killed by a signal), else null.</summary>
    int? ExitCode { get; }

    /// <summary>True when the kernel's OOM killer killed a process of this container.</summary>
    bool OomKilled { get; }

    /// <summary>The host address and port that reach <paramref name="containerPort"/> inside the container.</summary>
    /// <exception cref="ArgumentException">The port was not declared with <c>WithPort</c>.</exception>
    ContainerEndpoint GetEndpoint(int containerPort);

    /// <summary>Starts a created container. Does not wait for readiness (the builder does).</summary>
    Task StartAsync(CancellationToken cancellationToken = default);

    /// <summary>Runs a further command in the running container and collects its output.</summary>
    Task<ExecResult> ExecAsync(IReadOnlyList<string> command, CancellationToken cancellationToken = default);

    /// <summary>Everything the container wrote so far (bounded: the oldest lines go first).</summary>
    IReadOnlyList<LogLine> GetLogs();

    /// <summary>The container's output from its start, then live until it exits or the token is cancelled.</summary>
    IAsyncEnumerable<LogLine> FollowLogsAsync(CancellationToken cancellationToken = default);

    /// <summary>Completes with the exit code when the command exits.</summary>
    Task<int> WaitForExitAsync(CancellationToken cancellationToken = default);

    /// <summary>SIGTERM, then SIGKILL after <paramref name="timeout"/> (default: the spec's stop timeout).</summary>
    Task StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>Current (or final) resource use.</summary>
    Task<ContainerStats> GetStatsAsync(CancellationToken cancellationToken = default);
}

/// <summary>Life stages of a container.</summary>
public enum ContainerState
{
    /// <summary>Isolated and set up, command not yet started.</summary>
    Created,

    /// <summary>The command runs.</summary>
    Running,

    /// <summary>The command exited; see <see cref="IContainer.ExitCode"/>.</summary>
    Exited,

    /// <summary>Torn down: no process, cgroup or mount is left.</summary>
    Removed,
}

/// <summary>A host address and port reaching a port inside a container.</summary>
/// <param name="Host">The host address, e.g. <c>127.0.0.1</c>.</param>
/// <param name="Port">The host port.</param>
public sealed record ContainerEndpoint(string Host, int Port)
{
    /// <summary>An URI with the given scheme, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri ToUri(string scheme = "http") => new($"{scheme}://{Host}:{Port}/");

    /// <inheritdoc/>
    public override string ToString() => $"{Host}:{Port}";
}

/// <summary>The outcome of <see cref="IContainer.ExecAsync"/>.</summary>
/// <param name="ExitCode">Exit code (128 + signal when killed by a signal).</param>
/// <param name="Stdout">Standard output, UTF-8.</param>
/// <param name="Stderr">Standard error, UTF-8.</param>
public sealed record ExecResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Which output stream a log line came from.</summary>
public enum LogStream
{
    /// <summary>Standard output.</summary>
    Stdout,

    /// <summary>Standard error.</summary>
    Stderr,
}

/// <summary>One line of container output.</summary>
/// <param name="Timestamp">When the engine read it.</param>
/// <param name="Stream">Stdout or stderr.</param>
/// <param name="Text">The line, without its newline.</param>
public sealed record LogLine(DateTimeOffset Timestamp, LogStream Stream, string Text)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Timestamp:HH:mm:ss.fff} {(Stream == LogStream.Stdout ? "out" : "err")} {Text}";
}

/// <summary>Resource use of a container.</summary>
/// <param name="PeakMemoryBytes">Peak memory use, or null where the backend cannot tell (no memory cgroup).</param>
/// <param name="CpuTime">CPU time used by all of its processes.</param>
public sealed record ContainerStats(long? PeakMemoryBytes, TimeSpan CpuTime);
