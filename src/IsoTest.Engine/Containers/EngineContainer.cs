using System.Globalization;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Native;
using IsoTest.Engine.Networking;
using IsoTest.Engine.Process;
using IsoTest.Engine.RootFs;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Containers;

/// <summary>
/// One container of the built-in engine: an init agent (shim outside, PID 1 inside), its cgroup, its
/// output and its published ports. create → start → exit → remove; dispose is idempotent.
/// </summary>
internal sealed class EngineContainer : IContainer, IContainerProbes, IContainerHealth
{
    private readonly EngineBackend _engine;
    private readonly ContainerLogs _logs = new(TimeProvider.System);
    private readonly Dictionary<int, PortForwarder> _ports = [];
    private readonly TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ResolvedUser _user;
    private readonly ResolvedRoot _root;
    private readonly Payload _payload;
    private AgentChannel? _agent;
    private bool _joinedNetworks;
    private CgroupHandle? _cgroup;
    private ContainerStats? _finalStats;
    private volatile CgroupStats? _exitCgroupStats;
    private volatile ContainerState _state = ContainerState.Created;
    private int _disposed;
    private Task? _disposal;
    private long _startedAt;
    private HealthMonitor? _health;
    private readonly Lock _healthLock = new();

    private EngineContainer(EngineBackend engine, ContainerSpec spec, string id, ResolvedRoot root, ResolvedUser user)
    {
        _engine = engine;
        Spec = spec;
        Id = id;
        Name = spec.Name ?? $"isotest-{id[..12]}";
        _root = root;
        _user = user;
        _payload = Payload.For(spec, root, user, Hostname);
    }

    private string Hostname => Spec.Hostname ?? Id[..12];

    public string Id { get; }

    public string Name { get; }

    public ContainerSpec Spec { get; }

    public ContainerState State => _state;

    public int? ExitCode { get; private set; }

    public bool OomKilled { get; private set; }

    /// <summary>
    /// Checks what can be checked before anything is made (the spec's rules and this engine's own, all in one
    /// <see cref="InvalidContainerSpecException"/>), resolves the root and the user, so bad input leaves nothing behind.
    /// </summary>
    public static async Task<EngineContainer> PrepareAsync(EngineBackend engine, ContainerSpec spec, CancellationToken cancellationToken)
    {
        var provider = engine.RootFs.For(spec.RootFileSystem);
        var problems = new List<string>();
        if (engine.Network.Check(spec) is { } network)
        {
            problems.Add(network);
        }

        ResolvedRoot? root = null;
        ResolvedUser? user = null;
        if (spec.RootFileSystem.Kind != RootFileSystemKind.Directory || Directory.Exists(spec.RootFileSystem.Source))
        {
            root = await provider.ResolveAsync(spec, cancellationToken).ConfigureAwait(false);
            spec = root.Config?.ApplyTo(spec) ?? spec;
            try
            {
                // An image's /etc/passwd is in the topmost layer that has one.
                var passwdRoot = root.LowerDirectories.FirstOrDefault(d => File.Exists(Path.Combine(d, "etc/passwd"))) ?? root.LowerDirectories[0];
                user = UserResolver.Resolve(spec.User ?? root.Config?.User, passwdRoot);
            }
            catch (UnknownUserException e)
            {
                problems.Add($"WithUser(\"{spec.User}\"): {e.Message}.");
            }
        }

        if (!engine.IsRoot && user is not null)
        {
            problems.AddRange(RootlessOwnerProblems(spec, user));
        }

        ContainerSpecValidator.Validate(spec, problems);
        return new EngineContainer(engine, spec, Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()), root!, user!);
    }

    /// <summary>
    /// Rootless, the user namespace maps one uid and one gid (the caller's, as the container user's): a
    /// file owned by anyone else cannot exist inside. Said up front, instead of the kernel's bare EINVAL.
    /// </summary>
    private static IEnumerable<string> RootlessOwnerProblems(ContainerSpec spec, ResolvedUser user) =>
        spec.Files
            .Where(f => f.Uid != user.Uid || f.Gid != user.Gid)
            .Select(f => $"file {f.Target} is to be owned by {f.Uid}:{f.Gid}, but rootless containers have only " +
                         $"uid {user.Uid} and gid {user.Gid} (the container user, mapped to you): give the file that owner, or run the tests as root");

    /// <summary>
    /// Sets the container up: cgroup, init agent, namespaces, root filesystem. With
    /// <paramref name="start"/> the command goes to the agent with the spec, so it starts as soon as
    /// the set-up is done, without a round trip through the engine in between (the path
    /// <see cref="ContainerBuilder.StartAsync"/> takes); a failed start removes the container too.
    /// </summary>
    internal async Task CreateAsync(bool start, CancellationToken cancellationToken)
    {
        var staged = new List<string>();
        SafeFileHandle? stdoutAgent = null, stderrAgent = null, controlAgent = null;
        NetworkAttachment? network = null;
        Socket? stdout = null, stderr = null;
        try
        {
            // Caps first: a cap that cannot be enforced fails before any process exists.
            _cgroup = _engine.Cgroups.Create(_engine.EngineId, Id, Spec.Limits);
            network = AttachNetwork();
            if (network.NeedsForwarding)
            {
                foreach (var port in Spec.Ports.Distinct())
                {
                    _ports[port] = new PortForwarder(port, ct => ConnectInsideAsync(port, ct));
                }
            }

            var files = StageFiles(staged);
            var idMaps = _engine.IsRoot ? null : IdMaps.ForCaller(_user, Libc.geteuid(), Libc.getegid());
            var built = network.Mounts.Count > 0 ? Spec with { Mounts = [.. network.Mounts, .. Spec.Mounts] } : Spec;
            var spec = AgentSpec.For(built, _root, Hostname, _user, idMaps, _cgroup?.AgentRecords ?? [], files, network.Mode);
            var messages = new List<byte[]> { AgentSocket.Encode(spec.Fields) };
            if (start)
            {
                messages.Add(AgentSocket.Encode(StartMessage()));
            }

            var (outEngine, outAgent) = Fd.SocketPair(Libc.SOCK_STREAM);
            var (errEngine, errAgent) = Fd.SocketPair(Libc.SOCK_STREAM);
            var (controlEngine, ctlAgent) = Fd.SocketPair(Libc.SOCK_SEQPACKET);
            (stdoutAgent, stderrAgent, controlAgent) = (outAgent, errAgent, ctlAgent);
            stdout = Fd.ToSocket(outEngine);
            stderr = Fd.ToSocket(errEngine);
            _agent = new AgentChannel(new AgentSocket(controlEngine));

            // The loop spawns the agent, closes its ends here and sends it the messages at once.
            SafeFileHandle[] agentEnds = network.Namespace is { } netns ? [outAgent, errAgent, ctlAgent, netns] : [outAgent, errAgent, ctlAgent];
            await _engine.Loop.SpawnAsync(_engine.AgentPath, _engine.DevNull, agentEnds, _agent.Control, _agent, messages).ConfigureAwait(false);
            _logs.Start(stdout, stderr);
            (stdout, stderr) = (null, null);

            try
            {
                await _agent.Created.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (AgentException e)
            {
                throw new ContainerStartException(Id, DescribeSetupError(e.Error), _logs.Tail());
            }
            catch (AgentGoneException)
            {
                throw new ContainerStartException(Id, $"Container {Id}: the init agent exited during setup.", _logs.Tail());
            }

            _ = _agent.Exited.Task.ContinueWith(t => OnExited(t.Result), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            if (start)
            {
                await AwaitStartedAsync(_agent, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            await TearDownAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            stdoutAgent?.Dispose();
            stderrAgent?.Dispose();
            controlAgent?.Dispose();
            network?.Dispose();
            stdout?.Dispose();
            stderr?.Dispose();
            foreach (var path in staged)
            {
                File.Delete(path);
            }
        }
    }

    /// <summary>Its network namespace, on its user-defined networks already; a network's refusal names the container.</summary>
    private NetworkAttachment AttachNetwork()
    {
        try
        {
            var network = _engine.Network.Attach(Spec, Id, [Name, Hostname]);
            _joinedNetworks = network.Joined;
            return network;
        }
        catch (NetworkException e)
        {
            throw new ContainerStartException(Id, $"Container {Name}: {e.Message}", null, e);
        }
    }

    /// <summary>File contents go to the engine's state directory; the agent copies them in before start.</summary>
    private List<(string HostPath, FileCopySpec File)> StageFiles(List<string> staged)
    {
        var result = new List<(string, FileCopySpec)>();
        int n = 0;
        foreach (var file in Spec.Files)
        {
            if (file.SourcePath is not null)
            {
                result.Add((Path.GetFullPath(file.SourcePath), file));
                continue;
            }

            var path = Path.Combine(_engine.StateDirectory, $"{Id}-file{n++}");
            EngineState.WritePrivateFile(path, file.Content!.Value.Span);
            staged.Add(path);
            result.Add((path, file));
        }

        return result;
    }

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var agent = _agent ?? throw new InvalidOperationException("The container was not created.");
        if (_state != ContainerState.Created)
        {
            throw new InvalidOperationException($"Container {Id} is {_state}; only a created container can be started.");
        }

        TrySend(agent, StartMessage());
        await AwaitStartedAsync(agent, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>`start cwd nenv env... argv...`: the command travels with start, not with the spec.</summary>
    private string[] StartMessage() =>
        ["start", _payload.WorkingDirectory, Num(_payload.Environment.Count), .. _payload.Environment, .. _payload.Argv];

    private async Task AwaitStartedAsync(AgentChannel agent, CancellationToken cancellationToken)
    {
        try
        {
            await agent.Started.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            _startedAt = TimeProvider.System.GetTimestamp();
        }
        catch (AgentException e)
        {
            throw ToExecFailure(Id, e.Error);
        }
        catch (AgentGoneException)
        {
            throw new ContainerStartException(Id, $"Container {Id}: the init agent exited before the command started.", _logs.Tail());
        }

        if (_state == ContainerState.Created)
        {
            _state = ContainerState.Running;
        }

        foreach (var forwarder in _ports.Values)
        {
            forwarder.Start();
        }
    }

    private void OnExited(int rawStatus)
    {
        var stats = _cgroup is null ? null : _engine.Cgroups.ReadStats(_cgroup);
        _exitCgroupStats = stats;
        OomKilled = stats?.OomKills > 0;
        ExitCode = AgentChannel.ExitCode(rawStatus);
        if (_state is ContainerState.Created or ContainerState.Running)
        {
            _state = ContainerState.Exited;
        }

        // Callers read the logs right after WaitForExitAsync: complete it once the output pipes reached EOF
        // (bounded, as a leftover process could hold them open), without blocking the thread that reported the exit.
        var code = ExitCode.Value;
        _ = Task.WhenAny(_logs.Completion.Task, Task.Delay(TimeSpan.FromSeconds(5)))
            .ContinueWith(_ => _exit.TrySetResult(code), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    public ContainerEndpoint GetEndpoint(int containerPort)
    {
        if (!Spec.Ports.Contains(containerPort))
        {
            throw new ArgumentException($"Port {containerPort} was not published: declare it with WithPort({containerPort}) (or -p).", nameof(containerPort));
        }

        return !_ports.ContainsKey(containerPort)
            ? new ContainerEndpoint("127.0.0.1", containerPort)
            : new ContainerEndpoint("127.0.0.1", _ports[containerPort].HostPort);
    }

    public async Task<ExecResult> ExecAsync(IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw new ArgumentException("Exec needs a command.", nameof(command));
        }

        var agent = RunningAgent();
        var (outEngine, outAgent) = Fd.SocketPair(Libc.SOCK_STREAM);
        var (errEngine, errAgent) = Fd.SocketPair(Libc.SOCK_STREAM);
        using var stdout = Fd.ToSocket(outEngine);
        using var stderr = Fd.ToSocket(errEngine);
        long id = agent.NextRequestId();
        var exit = agent.ExpectExecExit(id);
        AgentReply reply;
        try
        {
            string[] fields =
            [
                Num(_user.Uid), Num(_user.Gid), _payload.WorkingDirectory, Num(_payload.Environment.Count),
                .. _payload.Environment,
                .. command,
            ];
            reply = await agent.RequestAsync(id, "exec", fields, new[] { _engine.DevNull, outAgent, errAgent }, cancellationToken).ConfigureAwait(false);
        }
        catch (AgentGoneException)
        {
            throw new InvalidOperationException($"Container {Id} exited; cannot exec {command[0]}.");
        }
        finally
        {
            outAgent.Dispose();
            errAgent.Dispose();
        }

        if (reply.Verb == "exec-failed")
        {
            throw ToExecFailure(Id, new AgentError(Field(reply.Fields, 0), IntField(reply.Fields, 1), Field(reply.Fields, 2)));
        }

        var outText = ReadAllAsync(stdout, cancellationToken);
        var errText = ReadAllAsync(stderr, cancellationToken);
        int status = await exit.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new ExecResult(AgentChannel.ExitCode(status), await outText.ConfigureAwait(false), await errText.ConfigureAwait(false));
    }

    private static async Task<string> ReadAllAsync(Socket socket, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(chunk, SocketFlags.None, cancellationToken).ConfigureAwait(false)) > 0)
            {
                buffer.Write(chunk, 0, n);
            }
        }
        catch (SocketException)
        {
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>A socket connected to 127.0.0.1:port inside the container, or null when nothing listens (or it is not running).</summary>
    internal async Task<Socket?> ConnectInsideAsync(int port, CancellationToken cancellationToken)
    {
        if (_agent is not { } agent || _state != ContainerState.Running)
        {
            return null;
        }

        AgentReply reply;
        try
        {
            reply = await agent.RequestAsync(agent.NextRequestId(), "connect", [Num(port)], ReadOnlyMemory<SafeFileHandle>.Empty, cancellationToken).ConfigureAwait(false);
        }
        catch (AgentGoneException)
        {
            return null;
        }

        if (reply.Verb == "connected" && reply.Fds.Length == 1)
        {
            return Fd.ToSocket(reply.Fds[0]);
        }

        foreach (var fd in reply.Fds)
        {
            fd.Dispose();
        }

        return null;
    }

    /// <summary>
    /// 10 ms: a probe here is one message to the agent and a connect or stat inside (~0.1 ms; an exec for
    /// Wait.ForCommand ~1 ms), so a wait notices a ready server within 10 ms for a few percent of a core.
    /// </summary>
    TimeSpan IContainerProbes.MaxProbeInterval => TimeSpan.FromMilliseconds(10);

    async Task<bool> IContainerProbes.IsPortOpenAsync(int port, CancellationToken cancellationToken)
    {
        if (Spec.Network.Kind == NetworkKind.Host)
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await probe.ConnectAsync(System.Net.IPAddress.Loopback, port, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }

        using var socket = await ConnectInsideAsync(port, cancellationToken).ConfigureAwait(false);
        return socket is not null;
    }

    async Task<bool> IContainerProbes.FileExistsAsync(string path, CancellationToken cancellationToken)
    {
        var agent = RunningAgent();
        long id = agent.NextRequestId();
        var reply = await agent.RequestAsync(id, "stat", [path], ReadOnlyMemory<SafeFileHandle>.Empty, cancellationToken).ConfigureAwait(false);
        return reply.Fields.Length > 0 && reply.Fields[0] == "1";
    }

    public ContainerHealthcheck? Healthcheck => _root.Config?.Healthcheck;

    public Task<ContainerHealth> GetHealthAsync(CancellationToken cancellationToken = default)
    {
        if (Healthcheck is not { } check)
        {
            return Task.FromResult(ContainerHealth.None);
        }

        if (_state != ContainerState.Running && _health is null)
        {
            return Task.FromResult(new ContainerHealth(HealthStatus.Starting));
        }

        lock (_healthLock)
        {
            _health ??= new HealthMonitor(check, (argv, ct) => ExecAsync(argv, ct), _startedAt, _exit.Task, TimeProvider.System);
        }

        return Task.FromResult(_health.Health);
    }

    public IReadOnlyList<LogLine> GetLogs() => _logs.Snapshot();

    public IAsyncEnumerable<LogLine> FollowLogsAsync(CancellationToken cancellationToken = default) => _logs.FollowAsync(cancellationToken);

    public Task<int> WaitForExitAsync(CancellationToken cancellationToken = default) => _exit.Task.WaitAsync(cancellationToken);

    public async Task StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var agent = _agent;
        if (agent is null || agent.Gone.Task.IsCompleted || _exit.Task.IsCompleted)
        {
            return;
        }

        TrySend(agent, "signal", Num(_root.Config?.StopSignal ?? Libc.SIGTERM));
        try
        {
            await _exit.Task.WaitAsync(timeout ?? Spec.StopTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            TrySend(agent, "kill");
            await _exit.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<ContainerStats> GetStatsAsync(CancellationToken cancellationToken = default)
    {
        if (_finalStats is not null)
        {
            return _finalStats;
        }

        var agent = _agent;
        if (agent is not null && (agent.Gone.Task.IsCompleted || _exit.Task.IsCompleted))
        {
            // After exit the shim's report (CPU time of every process) is moments away: wait for it.
            return await FinalStatsAsync(agent).WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        var cg = _cgroup is null ? null : _engine.Cgroups.ReadStats(_cgroup);
        var cpu = cg?.CpuTime ?? (agent is null ? null : ProcessTreeCpu.Read(agent.InitPid));
        return new ContainerStats(cg?.PeakMemoryBytes, cpu ?? TimeSpan.Zero);
    }

    private async Task<ContainerStats> FinalStatsAsync(AgentChannel agent)
    {
        var reaped = await agent.Gone.Task.ConfigureAwait(false);
        // Read once at exit (for the OOM flag) already: a peak no longer grows once the command is gone.
        var cg = _exitCgroupStats ?? (_cgroup is null ? null : _engine.Cgroups.ReadStats(_cgroup));
        return _finalStats = new ContainerStats(cg?.PeakMemoryBytes, cg?.CpuTime ?? reaped?.CpuTime ?? TimeSpan.Zero);
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _disposal = DisposeCoreAsync();
        }

        return new ValueTask(_disposal!);
    }

    private async Task DisposeCoreAsync()
    {
        await TearDownAsync().ConfigureAwait(false);
        _state = ContainerState.Removed;
        _engine.Forget(Id);
    }

    /// <summary>Kills every process, waits until the agent is gone, then removes ports and cgroup. Safe on a half-made container.</summary>
    private async Task TearDownAsync()
    {
        _health?.Dispose();
        foreach (var forwarder in _ports.Values)
        {
            await forwarder.DisposeAsync().ConfigureAwait(false);
        }

        var agent = _agent;
        if (agent is not null)
        {
            TrySend(agent, "kill");
            if (!await WaitGoneAsync(agent, TimeSpan.FromSeconds(10)).ConfigureAwait(false))
            {
                // The agent does not answer: kill it from outside. Init's death zaps the PID namespace.
                if (agent.InitPid > 0)
                {
                    Libc.kill(agent.InitPid, Libc.SIGKILL);
                }

                await WaitGoneAsync(agent, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }

            // Keep the figures before the cgroup goes; an agent that never went away has none to give.
            if (agent.Gone.Task.IsCompleted)
            {
                await FinalStatsAsync(agent).ConfigureAwait(false);
            }
        }

        if (_cgroup is not null)
        {
            _engine.Cgroups.Destroy(_cgroup);
        }

        if (_joinedNetworks)
        {
            _engine.Network.Detach(Id);
        }
    }

    private static async Task<bool> WaitGoneAsync(AgentChannel agent, TimeSpan timeout)
    {
        try
        {
            await agent.Gone.Task.WaitAsync(timeout).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private static void TrySend(AgentChannel agent, params string[] fields)
    {
        try
        {
            agent.Send(fields);
        }
        catch (Exception e) when (e is NativeException or ObjectDisposedException)
        {
            // Already gone (EPIPE/ECONNRESET, or its socket closed): nothing to stop.
        }
    }

    private AgentChannel RunningAgent() =>
        _agent is { } agent && _state == ContainerState.Running && !agent.Gone.Task.IsCompleted
            ? agent
            : throw new InvalidOperationException($"Container {Id} is not running (state {_state}).");

    private string DescribeSetupError(AgentError e)
    {
        var hint = (e.Stage, e.Errno) switch
        {
            ("cgroup", Libc.EACCES) when _cgroup is not null => _engine.Cgroups.JoinRefused(_cgroup),
            ("cgroup", _) => "the container could not join its cgroup; check that the cgroup exists and is writable",
            ("uidmap" or "gidmap", _) => "the user namespace id maps were refused; check /proc/sys/user/max_user_namespaces and that unprivileged user namespaces are allowed",
            ("clone", Libc.EACCES or 1) => "creating namespaces was refused; rootless containers need unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)",
            (_, Libc.ENOSYS) => $"this kernel (Linux {Environment.OSVersion.Version}) lacks a system call the engine needs here; it needs Linux 5.6 or newer (openat2; README, \"Kernel features\")",
            ("root", Libc.EPERM) when !_engine.IsRoot && Environment.OSVersion.Version < new Version(5, 11) =>
                $"a rootless writable root needs overlayfs in a user namespace, which Linux 5.11 brought (this is Linux {Environment.OSVersion.Version}); run as root or on a newer kernel",
            (_, Libc.ENOENT) => "a path does not exist; check the root filesystem, mount sources and targets",
            _ => "",
        };
        return $"Container {Id} could not be created: {e.Stage} failed{(e.Detail.Length > 0 ? $" for '{e.Detail}'" : "")}: {e.ErrnoText} (errno {e.Errno}){(hint.Length > 0 ? $": {hint}" : "")}.";
    }

    private static ExecFailedException ToExecFailure(string id, AgentError e)
    {
        var reason = e.Stage switch
        {
            "chdir" => ExecFailure.BadWorkingDirectory,
            "user" => ExecFailure.BadUser,
            "exec" when e.Errno is Libc.ENOENT or Libc.ENOTDIR => ExecFailure.NotFound,
            "exec" when e.Errno is Libc.EACCES or Libc.ENOEXEC => ExecFailure.NotExecutable,
            _ => ExecFailure.Other,
        };
        return new ExecFailedException(id, reason, e.Detail, e.Errno, e.ErrnoText);
    }

    private static string Field(string[] fields, int i) => i < fields.Length ? fields[i] : "";

    private static int IntField(string[] fields, int i) => int.TryParse(Field(fields, i), CultureInfo.InvariantCulture, out var v) ? v : 0;

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);
}
