using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;
using IsoTest.Waits;

namespace IsoTest.Docker;

/// <summary>One container on a Docker daemon, behind <see cref="IContainer"/>.</summary>
internal sealed class DockerContainer : IContainer, IContainerProbes, IContainerHealth
{
    private const int LogCapacity = 10_000;

    private readonly IDockerClient _client;
    private readonly DockerBackend _backend;
    private readonly string _publishedHost;
    private readonly TimeProvider _timeProvider;
    private DockerLogBuffer _logs;
    private readonly CancellationTokenSource _lifetime = new();
    private TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<int, ContainerEndpoint> _endpoints = [];
    private readonly Lock _lock = new();
    private Task? _logReader;
    private Task? _exitWatcher;
    private ContainerState _state = ContainerState.Created;
    private int? _exitCode;
    private bool _oomKilled;
    private ContainerStats? _lastStats;
    private int _disposed;

    internal DockerContainer(IDockerClient client, DockerBackend backend, ContainerSpec spec, string id, string name, string publishedHost, TimeProvider timeProvider, ContainerHealthcheck? healthcheck = null)
    {
        _client = client;
        Healthcheck = healthcheck;
        _backend = backend;
        Spec = spec;
        Id = id;
        Name = name;
        _publishedHost = publishedHost;
        _timeProvider = timeProvider;
        _logs = new DockerLogBuffer(LogCapacity, timeProvider);
    }

    public string Id { get; }

    public ContainerHealthcheck? Healthcheck { get; }

    /// <summary>The daemon's own health status (it runs the image's healthcheck).</summary>
    public async Task<ContainerHealth> GetHealthAsync(CancellationToken cancellationToken = default)
    {
        if (Healthcheck is null)
        {
            return ContainerHealth.None;
        }

        var health = (await _client.Containers.InspectContainerAsync(Id, cancellationToken).ConfigureAwait(false)).State?.Health;
        if (health is null)
        {
            return new ContainerHealth(HealthStatus.Starting);
        }

        var last = health.Log?.LastOrDefault()?.Output?.Trim();
        var status = health.Status switch
        {
            "healthy" => HealthStatus.Healthy,
            "unhealthy" => HealthStatus.Unhealthy,
            "none" => HealthStatus.None,
            _ => HealthStatus.Starting,
        };
        return new ContainerHealth(status, (int)Math.Min(health.FailingStreak, int.MaxValue), string.IsNullOrEmpty(last) ? null : last);
    }

    public string Name { get; }

    public ContainerSpec Spec { get; }

    public ContainerState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    public int? ExitCode
    {
        get
        {
            lock (_lock)
            {
                return _exitCode;
            }
        }
    }

    public bool OomKilled
    {
        get
        {
            lock (_lock)
            {
                return _oomKilled;
            }
        }
    }

    /// <summary>Copies files and copy-on-write trees into the created container, before its command starts.</summary>
    internal async Task UploadAsync(CancellationToken cancellationToken)
    {
        var copyOnWrite = Spec.Mounts.Where(m => m.Kind == MountKind.CopyOnWrite).ToList();
        if (Spec.Files.Count == 0 && copyOnWrite.Count == 0)
        {
            return;
        }

        var archive = DockerArchive.Create();
        await using var archiveScope = archive.ConfigureAwait(false);
        foreach (var mount in copyOnWrite)
        {
            await archive.AddDirectoryAsync(mount.Source!, mount.Target, cancellationToken).ConfigureAwait(false);
        }

        foreach (var file in Spec.Files)
        {
            await archive.AddFileAsync(file, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            using var stream = await archive.OpenReadAsync().ConfigureAwait(false);
            await _client.Containers.ExtractArchiveToContainerAsync(Id, new CopyToContainerParameters { Path = "/" }, stream, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException)
        {
            // A daemon that refuses the upload may answer before reading it all and close the connection:
            // then there is no API error, only a broken pipe.
            var hint = Spec.ReadOnlyRootFileSystem
                ? " The root filesystem is read-only and Docker copies files into it before start: drop WithReadOnlyRootFileSystem or use a bind mount instead."
                : "";
            throw new ContainerStartException(Id, $"Container {Name}: could not copy files into it before start: {(e is DockerApiException api ? DockerErrors.Message(api) : e.Message)}.{hint}", inner: e);
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        bool restart;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            if (_state is not (ContainerState.Created or ContainerState.Exited))
            {
                throw new InvalidOperationException($"Container {Name} is {_state}; only a created or exited container can be started.");
            }

            restart = _state == ContainerState.Exited;
            _state = ContainerState.Running;
        }

        if (restart)
        {
            // Started again (docker start): the previous run's watchers are done. The json-file log keeps every
            // run's output, and the follower reads it from the start, so a fresh buffer holds all of it once.
            await Task.WhenAll(_exitWatcher!, _logReader!).ConfigureAwait(false);
            lock (_lock)
            {
                _exit = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
                _logs = new DockerLogBuffer(LogCapacity, _timeProvider);
                (_exitCode, _oomKilled) = (null, false);
            }
        }

        try
        {
            await _client.Containers.StartContainerAsync(Id, new ContainerStartParameters(), cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException e)
        {
            lock (_lock)
            {
                _state = ContainerState.Created;
            }

            throw MapStartFailure(DockerErrors.Message(e), e);
        }

        // The json-file log keeps everything since start, so following it after start loses nothing.
        _logReader = Task.Run(ReadLogsAsync, CancellationToken.None);
        _exitWatcher = Task.Run(WatchExitAsync, CancellationToken.None);
        await ReadEndpointsAsync(cancellationToken).ConfigureAwait(false);
    }

    public ContainerEndpoint GetEndpoint(int containerPort)
    {
        if (!Spec.Ports.Contains(containerPort))
        {
            throw new ArgumentException($"Port {containerPort} of container {Name} was not published: declare it with WithPort({containerPort}).", nameof(containerPort));
        }

        if (Spec.Network.Kind == NetworkKind.Host)
        {
            return new ContainerEndpoint(_publishedHost, containerPort);
        }

        lock (_lock)
        {
            if (_endpoints.TryGetValue(containerPort, out var endpoint))
            {
                return endpoint;
            }
        }

        throw new InvalidOperationException(State == ContainerState.Created
            ? $"Container {Name} is not started yet: Docker assigns published ports at start."
            : $"Docker reports no published host port for {containerPort} of container {Name} (state {State}): a stopped container has none.");
    }

    public async Task<ExecResult> ExecAsync(IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw new ArgumentException("The command is empty: give at least the program.", nameof(command));
        }

        ContainerExecCreateResponse created;
        try
        {
            created = await _client.Exec.CreateContainerExecAsync(
                Id,
                new ContainerExecCreateParameters { AttachStdout = true, AttachStderr = true, Cmd = [.. command] },
                cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException e)
        {
            throw new ContainerStartException(Id, $"Container {Name}: could not exec '{command[0]}': {DockerErrors.Message(e)} (is it running?).", _logs.Tail(), e);
        }

        string stdout, stderr;
        using (var stream = await _client.Exec.StartContainerExecAsync(created.ID, new ContainerExecStartParameters { Detach = false }, cancellationToken).ConfigureAwait(false))
        {
            (stdout, stderr) = await stream.ReadOutputToEndAsync(cancellationToken).ConfigureAwait(false);
        }

        // The output ends when the process closes it; the daemon records the exit code a moment later.
        var inspect = await _client.Exec.InspectContainerExecAsync(created.ID, cancellationToken).ConfigureAwait(false);
        while (inspect.Running)
        {
            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
            inspect = await _client.Exec.InspectContainerExecAsync(created.ID, cancellationToken).ConfigureAwait(false);
        }

        var exitCode = (int)(inspect.ExitCode ?? -1);
        // runc reports an exec it could not start as output plus 126/127, not as an API error.
        if (exitCode is 126 or 127 && (stdout + stderr).Contains("OCI runtime exec failed", StringComparison.Ordinal))
        {
            throw MapStartFailure(stdout + stderr, null, command[0]);
        }

        return new ExecResult(exitCode, stdout, stderr);
    }

    public IReadOnlyList<LogLine> GetLogs() => _logs.Snapshot();

    public async IAsyncEnumerable<LogLine> FollowLogsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (State == ContainerState.Created)
        {
            throw new InvalidOperationException($"Container {Name} is not started: start it before following its logs.");
        }

        await foreach (var line in _logs.FollowAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return line;
        }
    }

    public Task<int> WaitForExitAsync(CancellationToken cancellationToken = default)
    {
        if (State == ContainerState.Created)
        {
            throw new InvalidOperationException($"Container {Name} is not started: WaitForExitAsync would never complete.");
        }

        return _exit.Task.WaitAsync(cancellationToken);
    }

    public async Task StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        if (State is ContainerState.Created or ContainerState.Removed)
        {
            return;
        }

        var grace = (uint)Math.Ceiling((timeout ?? Spec.StopTimeout).TotalSeconds);
        try
        {
            // The daemon sends the image's stop signal (SIGTERM), waits, then SIGKILLs.
            await _client.Containers.StopContainerAsync(Id, new ContainerStopParameters { WaitBeforeKillSeconds = grace }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (DockerErrors.IsNotFound(e))
        {
            return;
        }

        await _exit.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<ContainerStats> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        if (State != ContainerState.Running)
        {
            // Docker drops the cgroup when the command exits: the last reading is the best there is.
            return _lastStats ?? new ContainerStats(null, TimeSpan.Zero);
        }

        ContainerStatsResponse? response = null;
        var progress = new StatsProgress(r => response = r);
        await _client.Containers.GetContainerStatsAsync(Id, new ContainerStatsParameters { Stream = false, OneShot = true }, progress, cancellationToken)
            .ConfigureAwait(false);
        if (response is null)
        {
            return _lastStats ?? new ContainerStats(null, TimeSpan.Zero);
        }

        // cgroup v2 has no max_usage: Docker leaves it 0 there, which means "unknown", not "nothing".
        long? peak = response.MemoryStats?.MaxUsage is > 0 ? (long)response.MemoryStats.MaxUsage.Value : null;
        var cpuNs = response.CPUStats?.CPUUsage?.TotalUsage ?? 0;
        var stats = new ContainerStats(peak, TimeSpan.FromTicks((long)(cpuNs / 100)));
        if (response.Read != default || cpuNs > 0)
        {
            _lastStats = stats;
        }

        return stats;
    }

    /// <summary>50 ms: a probe here is a round trip to the daemon, and a file probe an exec (tens of milliseconds).</summary>
    TimeSpan IContainerProbes.MaxProbeInterval { get; } = TimeSpan.FromMilliseconds(50);

    /// <summary>A port probe here is an exec (tens of ms), dearer than the HTTP request it would save.</summary>
    bool IContainerProbes.PortProbeIsCheap => false;

    async Task<bool> IContainerProbes.FileExistsAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            await _client.Containers.GetArchiveFromContainerAsync(Id, new ContainerPathStatParameters { Path = path }, statOnly: true, cancellationToken)
                .ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (DockerErrors.IsNotFound(e))
        {
            return false;
        }
    }

    async Task<bool> IContainerProbes.IsPortOpenAsync(int port, CancellationToken cancellationToken)
    {
        if (Spec.Network.Kind != NetworkKind.Host)
        {
            try
            {
                // Inside the container: a listening socket in its /proc/net/tcp{,6}. A connect from the host would
                // succeed as soon as docker-proxy listens, before the service does.
                var result = await ExecAsync(["cat", "/proc/net/tcp", "/proc/net/tcp6"], cancellationToken).ConfigureAwait(false);
                return result.ExitCode == 0 && IsListening(result.Stdout, port);
            }
            catch (ExecFailedException)
            {
                // No cat in the image: fall back to connecting through the published port.
            }
        }

        var endpoint = GetEndpoint(port);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endpoint.Host, endpoint.Port, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>True when a line of /proc/net/tcp shows local port <paramref name="port"/> in state 0A (LISTEN).</summary>
    internal static bool IsListening(string procNetTcp, int port)
    {
        var hexPort = ":" + port.ToString("X4", CultureInfo.InvariantCulture);
        foreach (var line in procNetTcp.Split('\n'))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 3 && fields[1].EndsWith(hexPort, StringComparison.OrdinalIgnoreCase) && fields[3] == "0A")
            {
                return true;
            }
        }

        return false;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await _client.Containers.RemoveContainerAsync(Id, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, CancellationToken.None)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (DockerErrors.IsNotFound(e))
        {
            // already gone: nothing to do
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.Conflict && (e.ResponseBody ?? "").Contains("already in progress", StringComparison.Ordinal))
        {
            // someone else (a sweep, docker rm) is removing it
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException)
        {
            throw new BackendUnavailableException($"Could not remove Docker container {Name} ({Id}): {e.Message}. Remove it with `docker rm -f {Id}`.", e);
        }
        finally
        {
            await StopBackgroundAsync().ConfigureAwait(false);
            lock (_lock)
            {
                _state = ContainerState.Removed;
            }

            _backend.Forget(this);
        }
    }

    private async Task StopBackgroundAsync()
    {
        // The removal killed the command, so the exit watcher and the log follower end by themselves;
        // cancelling first would lose the exit code and the last lines.
        foreach (var task in new[] { _exitWatcher, _logReader })
        {
            if (task is not null)
            {
                await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
            }
        }

        await _lifetime.CancelAsync().ConfigureAwait(false);
        foreach (var task in new[] { _exitWatcher, _logReader })
        {
            if (task is not null)
            {
                await Task.WhenAny(task).ConfigureAwait(false);
            }
        }

        _logs.Complete();
        _exit.TrySetException(new ObjectDisposedException(nameof(DockerContainer), $"Container {Name} was removed before its command exited."));
        _lifetime.Dispose();
    }

    private async Task ReadEndpointsAsync(CancellationToken cancellationToken)
    {
        if (Spec.Ports.Count == 0 || Spec.Network.Kind == NetworkKind.Host)
        {
            return;
        }

        var inspect = await _client.Containers.InspectContainerAsync(Id, cancellationToken).ConfigureAwait(false);
        var ports = inspect.NetworkSettings?.Ports;
        lock (_lock)
        {
            foreach (var port in Spec.Ports)
            {
                if (ports is not null && ports.TryGetValue(DockerSpecMapper.PortKey(port), out var bindings) && bindings is not null)
                {
                    // Prefer the IPv4 binding: the daemon may add an IPv6 one for the same port.
                    var binding = bindings.FirstOrDefault(b => !b.HostIP.Contains(':', StringComparison.Ordinal)) ?? bindings.FirstOrDefault();
                    if (binding is not null && int.TryParse(binding.HostPort, NumberStyles.None, CultureInfo.InvariantCulture, out var hostPort))
                    {
                        _endpoints[port] = new ContainerEndpoint(_publishedHost, hostPort);
                    }
                }
            }
        }
    }

    private async Task ReadLogsAsync()
    {
        var token = _lifetime.Token;
        try
        {
            using var stream = await _client.Containers.GetContainerLogsAsync(
                Id,
                new ContainerLogsParameters { Follow = true, ShowStdout = true, ShowStderr = true, Timestamps = true },
                token).ConfigureAwait(false);
            var buffer = new byte[64 * 1024];
            var chars = new char[Encoding.UTF8.GetMaxCharCount(buffer.Length)];
            // One decoder per stream: a UTF-8 sequence may be split across two frames of the same stream.
            var outDecoder = Encoding.UTF8.GetDecoder();
            var errDecoder = Encoding.UTF8.GetDecoder();
            while (true)
            {
                var read = await stream.ReadOutputAsync(buffer, 0, buffer.Length, token).ConfigureAwait(false);
                if (read.EOF)
                {
                    break;
                }

                var isErr = read.Target == MultiplexedStream.TargetStream.StandardError;
                var decoder = isErr ? errDecoder : outDecoder;
                var count = decoder.GetChars(buffer, 0, read.Count, chars, 0, flush: false);
                _logs.Append(isErr ? LogStream.Stderr : LogStream.Stdout, new string(chars, 0, count));
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception e) when (DockerErrors.IsNotFound(e) || e is IOException or HttpRequestException)
        {
            // removed under us, or the connection dropped at removal: the output so far is kept
        }
        finally
        {
            _logs.Complete();
        }
    }

    private async Task WatchExitAsync()
    {
        var token = _lifetime.Token;
        try
        {
            var wait = await _client.Containers.WaitContainerAsync(Id, token).ConfigureAwait(false);
            var code = (int)wait.StatusCode;
            var oom = false;
            try
            {
                // dockerd learns of an OOM kill from a separate event that can arrive after the exit: a
                // SIGKILL death (137) of a memory-capped container is inspected again for up to ~1.3 s
                // (20, 40, ... 320 ms apart) before it is taken as "not OOM". Without a memory cap only
                // the host's own OOM killer could be at work, which Docker does not flag either.
                var delay = TimeSpan.FromMilliseconds(20);
                for (var attempt = 0; ; attempt++)
                {
                    var inspect = await _client.Containers.InspectContainerAsync(Id, token).ConfigureAwait(false);
                    if (inspect.State is { } state)
                    {
                        code = (int)state.ExitCode;
                        oom = state.OOMKilled;
                    }

                    if (oom || code != 137 || Spec.Limits.MemoryBytes is null || attempt == 6)
                    {
                        break;
                    }

                    await Task.Delay(delay, token).ConfigureAwait(false);
                    delay *= 2;
                }
            }
            catch (Exception e) when (DockerErrors.IsNotFound(e))
            {
                // removed right after exiting: the wait's status code is all there is
            }

            // Callers read the logs right after WaitForExitAsync: let the follower drain the last lines first.
            if (_logReader is not null)
            {
                await Task.WhenAny(_logReader, Task.Delay(TimeSpan.FromSeconds(5), token)).ConfigureAwait(false);
            }

            lock (_lock)
            {
                _exitCode = code;
                _oomKilled = oom;
                if (_state == ContainerState.Running)
                {
                    _state = ContainerState.Exited;
                }
            }

            _exit.TrySetResult(code);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception e) when (DockerErrors.IsNotFound(e))
        {
            _exit.TrySetException(new ObjectDisposedException(nameof(DockerContainer), $"Container {Name} was removed before its command exited."));
        }
        catch (Exception e) when (e is DockerApiException or IOException or HttpRequestException or InvalidOperationException)
        {
            // Never leave WaitForExitAsync hanging: a lost connection to the daemon is reported there.
            _exit.TrySetException(new BackendUnavailableException(
                $"Lost track of Docker container {Name} ({Id}) while waiting for it to exit: {e.Message}. Is the daemon still running?", e));
        }
    }

    private ContainerStartException MapStartFailure(string message, Exception? inner, string? program = null)
    {
        program ??= Spec.Argv.FirstOrDefault() ?? "(the image's entrypoint)";
        // runc's messages, as the daemon relays them (OCI runtime create/exec failed: ...).
        if (message.Contains("executable file not found", StringComparison.Ordinal)
            || (message.Contains("exec:", StringComparison.Ordinal) && message.Contains("no such file or directory", StringComparison.Ordinal)))
        {
            return new ExecFailedException(Id, ExecFailure.NotFound, program, 2, "No such file or directory");
        }

        if (message.Contains("chdir to cwd", StringComparison.Ordinal) || message.Contains("working directory", StringComparison.OrdinalIgnoreCase))
        {
            return new ExecFailedException(Id, ExecFailure.BadWorkingDirectory, Spec.WorkingDirectory ?? "/", 2, "No such file or directory");
        }

        if (message.Contains("unable to find user", StringComparison.Ordinal) || message.Contains("no matching entries in passwd", StringComparison.Ordinal))
        {
            return new ExecFailedException(Id, ExecFailure.BadUser, Spec.User ?? "", 2, "No such user");
        }

        if (message.Contains("permission denied", StringComparison.Ordinal) && message.Contains("exec", StringComparison.Ordinal))
        {
            return new ExecFailedException(Id, ExecFailure.NotExecutable, program, 13, "Permission denied");
        }

        return new ContainerStartException(Id, $"Docker could not start container {Name}: {message.Trim()}", _logs.Tail(), inner);
    }

    private sealed class StatsProgress(Action<ContainerStatsResponse> onReport) : IProgress<ContainerStatsResponse>
    {
        public void Report(ContainerStatsResponse value) => onReport(value);
    }
}
