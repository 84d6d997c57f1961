using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using IsoTest.Engine.Images;
using IsoTest.Engine.Native;
using IsoTest.Engine.RootFs;

namespace IsoTest.Engine.Containers;

/// <summary>
/// One container of the built-in engine, as users see it (<see cref="IContainer"/>): a facade over its
/// <see cref="ContainerLifecycle"/> (state, start, stop, exit, remove), its <see cref="PublishedPorts"/>
/// and the agent's typed verbs for exec and probes. Set-up lives in <see cref="ContainerSetup"/>.
/// </summary>
internal sealed class EngineContainer : IContainer, IContainerProbes, IContainerHealth
{
    private readonly EngineContext _context;
    private readonly ContainerLifecycle _lifecycle;
    private readonly PublishedPorts _ports;
    private readonly ResolvedUser _user;
    private readonly ResolvedRoot _root;
    private readonly Payload _payload;
    private readonly ImageConfig? _image;
    private readonly Lock _healthLock = new();
    private HealthMonitor? _health;
    private int _disposed;
    private Task? _disposal;

    private EngineContainer(EngineContext context, ContainerSpec spec, string id, string name, ResolvedRoot root, ResolvedUser user, PublishedPorts ports)
    {
        _context = context;
        Spec = spec;
        Id = id;
        Name = name;
        _user = user;
        _root = root;
        _image = root.Config;
        var hostname = spec.Hostname ?? id[..12];
        _payload = Payload.For(spec, root, user, hostname);
        _ports = ports;
        _lifecycle = new ContainerLifecycle(context, id, spec, new ContainerSetup(context, id, name, spec, root, user, hostname), _payload, _ports);
    }

    public string Id { get; }

    public string Name { get; }

    public ContainerSpec Spec { get; }

    public ContainerState State => _lifecycle.State;

    public int? ExitCode => _lifecycle.ExitCode;

    public bool OomKilled => _lifecycle.OomKilled;

    /// <summary>
    /// Checks what can be checked before anything is made (the spec's rules and this engine's own, all in one
    /// <see cref="InvalidContainerSpecException"/>), resolves the root and the user, and reserves the name, so
    /// bad input leaves nothing behind.
    /// </summary>
    public static async Task<EngineContainer> PrepareAsync(EngineContext context, ContainerSpec spec, CancellationToken cancellationToken)
    {
        var provider = context.RootFs.For(spec.RootFileSystem);
        var problems = new List<string>();
        if (context.Network.Check(spec) is { } network)
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
                user = UserResolver.Resolve(spec.User ?? root.Config?.User, root);
            }
            catch (UnknownUserException e)
            {
                problems.Add($"WithUser(\"{spec.User}\"): {e.Message}.");
            }
        }

        try
        {
            if (!context.IsRoot && user is not null)
            {
                problems.AddRange(RootlessOwnerProblems(spec, user, root!.Config is not null, context.Ranges));
            }

            ContainerSpecValidator.Validate(spec, problems);
            var id = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
            var name = spec.Name ?? $"isotest-{id[..12]}";
            // Connections are relayed only once the container has started, so the forwarders can be bound before it exists.
            EngineContainer? made = null;
            var ports = new PublishedPorts(spec, forward: spec.Network.Kind != NetworkKind.Host, (port, ct) => made!.ConnectInsideAsync(port, ct));
            if (!context.Registry.TryReserve(id, name))
            {
                await ports.DisposeAsync().ConfigureAwait(false);
                throw new ContainerStartException(null, $"A container named '{name}' already exists in this engine: choose another name (WithName / --name) or omit it.");
            }

            return made = new EngineContainer(context, spec, id, name, root!, user!, ports);
        }
        catch
        {
            root?.Lease?.Dispose(); // no container will hold the image
            throw;
        }
    }

    /// <summary>
    /// Rootless, the user namespace maps the caller's subordinate ranges (or, without them, one uid and one gid: the
    /// caller's, as the container user's): a file owned by an id outside them cannot exist inside. Said up front,
    /// instead of the kernel's bare EINVAL. (Init writes the files from inside, where it may give them any mapped owner.)
    /// </summary>
    private static IEnumerable<string> RootlessOwnerProblems(ContainerSpec spec, ResolvedUser user, bool image, SubordinateIds? ranges) =>
        spec.Files
            .Where(f => !IdMaps.Covers(user, image, ranges, f.Uid, f.Gid))
            .Select(f => RootlessOwnerProblem(f.Target, f.Uid, f.Gid, user, ranges));

    internal static string RootlessOwnerProblem(string target, long uid, long gid, ResolvedUser user, SubordinateIds? ranges) =>
        ranges is null
            ? $"file {target} is to be owned by {uid}:{gid}, but rootless containers without subordinate ids have only " +
              $"uid {user.Uid} and gid {user.Gid} (the container user, mapped to you): give the file that owner, give your user " +
              "ranges in /etc/subuid and /etc/subgid (then every id in them exists inside), or run the tests as root"
            : $"file {target} is to be owned by {uid}:{gid}, but this rootless container maps only uids 0-{ranges.UidCount} and " +
              $"gids 0-{ranges.GidCount} (your ranges in /etc/subuid and /etc/subgid) and the container user {user.Uid}:{user.Gid}: " +
              "give the file an owner in them, or widen the ranges";

    /// <summary>Sets the container up; with <paramref name="start"/> its command starts too. A failure removes what was made and frees the name.</summary>
    internal async Task CreateAsync(bool start, CancellationToken cancellationToken)
    {
        try
        {
            await _lifecycle.CreateAsync(start, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _context.Registry.Release(Id);
            _root.Lease?.Dispose();
            throw;
        }

        _context.Registry.Publish(this);
    }

    public Task StartAsync(CancellationToken cancellationToken = default) => _lifecycle.StartAsync(cancellationToken);

    public Task StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        _lifecycle.StopAsync(timeout ?? Spec.StopTimeout, _image?.StopSignal ?? AgentErrors.StopSignal, cancellationToken);

    public ContainerHealthcheck? Healthcheck => _image?.Healthcheck;

    /// <summary>The engine runs the image's healthcheck itself (<see cref="HealthMonitor"/>), from the first question on.</summary>
    public Task<ContainerHealth> GetHealthAsync(CancellationToken cancellationToken = default)
    {
        if (Healthcheck is not { } check)
        {
            return Task.FromResult(ContainerHealth.None);
        }

        lock (_healthLock)
        {
            if (_health is null)
            {
                if (State != ContainerState.Running || _lifecycle.StartedAt is not { } startedAt)
                {
                    return Task.FromResult(new ContainerHealth(HealthStatus.Starting));
                }

                _health = new HealthMonitor(check, (argv, ct) => ExecAsync(argv, ct), startedAt, _lifecycle.WaitForExitAsync(CancellationToken.None), _context.Time);
            }

            return Task.FromResult(_health.Health);
        }
    }

    public Task<int> WaitForExitAsync(CancellationToken cancellationToken = default) => _lifecycle.WaitForExitAsync(cancellationToken);

    public Task<ContainerStats> GetStatsAsync(CancellationToken cancellationToken = default) => _lifecycle.GetStatsAsync(cancellationToken);

    public ContainerEndpoint GetEndpoint(int containerPort) => _ports.Endpoint(containerPort);

    public IReadOnlyList<LogLine> GetLogs() => _lifecycle.Logs;

    public async IAsyncEnumerable<LogLine> FollowLogsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var line in _lifecycle.EarlierLogs)
        {
            yield return line;
        }

        if (_lifecycle.CurrentLogs is { } current)
        {
            await foreach (var line in current.FollowAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return line;
            }
        }
    }

    public Task<ExecResult> ExecAsync(IReadOnlyList<string> command, CancellationToken cancellationToken = default) =>
        ExecAsync(command, _user, _payload, cancellationToken);

    /// <summary>
    /// <c>docker exec -e -u -w</c>: the command with further <c>KEY=VALUE</c> variables over the container's, as another
    /// user (a name from the root's /etc/passwd or uid[:gid]), in another directory; null keeps the container's.
    /// </summary>
    /// <exception cref="ExecFailedException">The user is unknown, or the command could not be executed.</exception>
    internal Task<ExecResult> ExecAsync(IReadOnlyList<string> command, IReadOnlyList<string> environment, string? user, string? workingDirectory, CancellationToken cancellationToken)
    {
        ResolvedUser resolved;
        try
        {
            resolved = string.IsNullOrEmpty(user) ? _user : UserResolver.Resolve(user, _root);
        }
        catch (UnknownUserException e)
        {
            throw new ExecFailedException(Id, ExecFailure.BadUser, user!, 0, e.Message);
        }

        var keys = environment.Select(v => v.Split('=', 2)[0]).ToHashSet(StringComparer.Ordinal);
        var payload = _payload with
        {
            Environment = [.. _payload.Environment.Where(v => !keys.Contains(v.Split('=', 2)[0])), .. environment.Where(v => v.Contains('=', StringComparison.Ordinal))],
            WorkingDirectory = string.IsNullOrEmpty(workingDirectory) ? _payload.WorkingDirectory : workingDirectory,
        };
        return ExecAsync(command, resolved, payload, cancellationToken);
    }

    private async Task<ExecResult> ExecAsync(IReadOnlyList<string> command, ResolvedUser user, Payload payload, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw new ArgumentException("Exec needs a command.", nameof(command));
        }

        var agent = _lifecycle.RunningAgent();
        var (outEngine, outAgent) = Fd.StreamPair();
        var (errEngine, errAgent) = Fd.StreamPair();
        using var stdout = Fd.ToSocket(outEngine);
        using var stderr = Fd.ToSocket(errEngine);
        Task<int> exit;
        try
        {
            exit = await agent.ExecAsync(user, payload, command, [_context.DevNull, outAgent, errAgent], cancellationToken).ConfigureAwait(false);
        }
        catch (Process.AgentGoneException)
        {
            throw new InvalidOperationException($"Container {Id} exited; cannot exec {command[0]}.");
        }
        finally
        {
            outAgent.Dispose();
            errAgent.Dispose();
        }

        var outText = ReadAllAsync(stdout, cancellationToken);
        var errText = ReadAllAsync(stderr, cancellationToken);
        int code = await exit.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new ExecResult(code, await outText.ConfigureAwait(false), await errText.ConfigureAwait(false));
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

    /// <summary>
    /// The container's root as its processes see it, for copying files in and out (<see cref="ContainerFiles"/>);
    /// only while it is created or running: the writable layer lives in init's mount namespace and goes with it.
    /// Rootless, every call on it is made from the container's user namespace (<see cref="Process.ContainerFiler"/>), as its
    /// root: what the container's root may read and write, the copy may, and owners read are the container's ids.
    /// </summary>
    /// <exception cref="ContainerFileException">The container is not set up (exited or removed).</exception>
    internal LayerTree OpenRoot()
    {
        Func<Microsoft.Win32.SafeHandles.SafeFileHandle, ITreeCalls>? calls = _context.IsRoot ? null : userns => Process.ContainerFiler.Start(_context.Loop, _context.AgentPath, userns);
        return _lifecycle.AgentIfSetUp?.OpenRoot(calls)
            ?? throw new ContainerFileException(ContainerFileProblem.NotRunning, $"Container {Id} is {State.ToString().ToLowerInvariant()}: its files exist only while it is created or running (IsoTest keeps no writable layer after exit)");
    }

    /// <summary>
    /// Unpacks a tar into <paramref name="directory"/> inside (<c>docker cp</c> in), with the archive's owners. Rootless
    /// the tree is written as the container's root (<see cref="OpenRoot"/>), so an owner is a container id: one the
    /// user namespace does not map is refused before anything is written, in the words <see cref="PrepareAsync"/> uses
    /// for files, and an entry owned by the caller's own host ids (a tar made on the host: "mine") becomes the
    /// container's id for the caller (0 in an image, the container user in the host's and directory roots).
    /// </summary>
    /// <exception cref="ContainerFileException">Not set up, no such directory, a bad archive or owner, or a read-only target.</exception>
    internal void CopyIn(string directory, Stream tar, CancellationToken cancellationToken)
    {
        using var root = OpenRoot();
        var image = _root.Config is not null;
        Func<string, int, int, string?>? owners = _context.IsRoot ? null : (name, uid, gid) =>
            IdMaps.Covers(_user, image, _context.Ranges, uid, gid) || LayerOwners.IsHostCaller(uid, gid)
                ? null
                : RootlessOwnerProblem("/" + ContainerFiles.Relative(directory + "/" + name), uid, gid, _user, _context.Ranges);
        var options = _context.IsRoot
            ? new UnpackOptions(Privileged: true)
            : new UnpackOptions(Privileged: true)
            {
                // Root of a user namespace may give any owner it maps, but make no device node (that needs the host's CAP_MKNOD).
                Devices = false,
                MapOwner = (uid, gid) => LayerOwners.IsHostCaller(uid, gid) ? (image ? 0 : (int)_user.Uid, image ? 0 : (int)_user.Gid) : (uid, gid),
            };
        ContainerFiles.Extract(root, directory, tar, options, owners, cancellationToken);
    }

    /// <summary>The container's processes as the host sees them (docker top); empty when it is not running.</summary>
    internal IReadOnlyList<ProcessTreeCpu.Entry> Processes() => _lifecycle.AgentIfRunning?.Processes() ?? [];

    /// <summary>A socket connected to 127.0.0.1:port inside the container, or null when nothing listens (or it is not running).</summary>
    internal async Task<Socket?> ConnectInsideAsync(int port, CancellationToken cancellationToken) =>
        _lifecycle.AgentIfRunning is { } agent && await agent.ConnectAsync(port, cancellationToken).ConfigureAwait(false) is { } handle
            ? Fd.ToSocket(handle)
            : null;

    /// <summary>
    /// 10 ms: a probe here is one message to the agent and a connect or stat inside (~0.1 ms; an exec for
    /// Wait.ForCommand ~1 ms), so a wait notices a ready server within 10 ms for a few percent of a core.
    /// </summary>
    TimeSpan IContainerProbes.MaxProbeInterval => TimeSpan.FromMilliseconds(10);

    /// <summary>A port probe is the agent's connect alone; a request through the forwarder does that connect too, and more.</summary>
    bool IContainerProbes.PortProbeIsCheap => true;

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

    Task<bool> IContainerProbes.FileExistsAsync(string path, CancellationToken cancellationToken) =>
        _lifecycle.RunningAgent().StatAsync(path, cancellationToken);

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
        lock (_healthLock)
        {
            _health?.Dispose();
        }

        await _lifecycle.RemoveAsync().ConfigureAwait(false);
        _context.Registry.Release(Id);
        _root.Lease?.Dispose(); // its overlay is unmounted: prune may take the layers now
    }
}
