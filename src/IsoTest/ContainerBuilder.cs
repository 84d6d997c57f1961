using System.Collections.Immutable;
using System.Text;

namespace IsoTest;

/// <summary>
/// Declares a container and starts it. Immutable: every <c>With...</c> returns a new builder, so a
/// configured builder can be shared and specialised freely. <see cref="Build"/> validates the whole
/// declaration and reports every problem at once.
/// </summary>
/// <example>
/// <code>
/// await using var redis = await new ContainerBuilder()
///     .FromHost()
///     .WithCommand("redis-server", "--port", "6379", "--save", "")
///     .WithMemoryLimit("64m").WithCpuLimit(0.5).WithPidsLimit(64)
///     .WithPort(6379)
///     .WaitFor(Wait.ForPort(6379))
///     .StartAsync(cancellationToken);
/// </code>
/// </example>
public sealed class ContainerBuilder
{
    private readonly BuilderState _state;

    /// <summary>An empty declaration: choose a root filesystem (<see cref="FromHost"/>, ...) and a command.</summary>
    public ContainerBuilder()
        : this(BuilderState.Empty)
    {
    }

    private ContainerBuilder(BuilderState state)
    {
        _state = state;
    }

    /// <summary>What this builder was told (for tests and the xunit integration).</summary>
    internal BuilderState State => _state;

    /// <summary>Runs on the host's own filesystem (read-only, behind a private writable overlay): what is installed here, no image.</summary>
    public ContainerBuilder FromHost() => With(_state with { Root = RootFileSystem.Host });

    /// <summary>Runs on a root filesystem in a host directory (which never changes: writes go to a private overlay).</summary>
    /// <param name="path">Absolute path of the directory.</param>
    public ContainerBuilder FromDirectory(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return With(_state with { Root = RootFileSystem.FromDirectory(path) });
    }

    /// <summary>Runs on an OCI or Docker image, e.g. <c>redis:7</c>. Its default command applies unless <see cref="WithCommand"/> is given.</summary>
    public ContainerBuilder FromImage(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return With(_state with { Root = RootFileSystem.FromImage(reference) });
    }

    /// <summary>
    /// Runs on the image in a file, without a registry: a <c>docker save</c> archive, or an OCI image layout
    /// (a directory or its tar). The archive must hold one image; it is loaded once per file and change.
    /// </summary>
    /// <param name="path">Path of the archive or layout directory.</param>
    public ContainerBuilder FromImageArchive(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return With(_state with { Root = RootFileSystem.FromImageArchive(path) });
    }

    /// <summary>When the image of <see cref="FromImage"/> is pulled (missing, always, never), instead of the backend's default.</summary>
    public ContainerBuilder WithPullPolicy(ImagePullPolicy policy)
    {
        if (!Enum.IsDefined(policy))
        {
            throw new ArgumentOutOfRangeException(nameof(policy), policy, "Use ImagePullPolicy.Missing, Always or Never.");
        }

        return With(_state with { PullPolicy = policy });
    }

    /// <summary>
    /// What to do instead when the image cannot be had (not stored and not pullable, e.g. offline): added to the
    /// <see cref="ImagePullException"/>'s message. For definitions that pick an image a user did not name, such as the
    /// modules (which name their image variable and <c>FromHost()</c>).
    /// </summary>
    public ContainerBuilder WithImageHint(string hint)
    {
        ArgumentException.ThrowIfNullOrEmpty(hint);
        return With(_state with { ImageHint = hint });
    }

    /// <summary>Reports the progress of pulling the image, per layer (both backends).</summary>
    public ContainerBuilder WithPullProgress(IProgress<ImagePullProgress> progress)
    {
        ArgumentNullException.ThrowIfNull(progress);
        return With(_state with { PullProgress = progress });
    }

    /// <summary>The command and its arguments (replaces any earlier command).</summary>
    public ContainerBuilder WithCommand(params string[] command)
    {
        ArgumentNullException.ThrowIfNull(command);
        return With(_state with { Command = [.. command] });
    }

    /// <summary>The entrypoint, put before the command (replaces any earlier entrypoint).</summary>
    public ContainerBuilder WithEntrypoint(params string[] entrypoint)
    {
        ArgumentNullException.ThrowIfNull(entrypoint);
        return With(_state with { Entrypoint = [.. entrypoint] });
    }

    /// <summary>Sets one environment variable (replacing an earlier value).</summary>
    public ContainerBuilder WithEnvironment(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        return With(_state with { Environment = _state.Environment.SetItem(key, value) });
    }

    /// <summary>Sets several environment variables (replacing earlier values).</summary>
    public ContainerBuilder WithEnvironment(IReadOnlyDictionary<string, string> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        return With(_state with { Environment = _state.Environment.SetItems(variables) });
    }

    /// <summary>The working directory of the command: an absolute path inside the container.</summary>
    public ContainerBuilder WithWorkingDirectory(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return With(_state with { WorkingDirectory = path });
    }

    /// <summary>The user the command runs as: <c>uid[:gid]</c> (e.g. <c>1000:1000</c>) or a name from the container's <c>/etc/passwd</c>.</summary>
    public ContainerBuilder WithUser(string user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return With(_state with { User = user });
    }

    /// <summary>The container's hostname.</summary>
    public ContainerBuilder WithHostname(string hostname)
    {
        ArgumentNullException.ThrowIfNull(hostname);
        return With(_state with { Hostname = hostname });
    }

    /// <summary>A unique, human-readable name (Docker's rules: letters, digits, <c>_ . -</c>).</summary>
    public ContainerBuilder WithName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return With(_state with { Name = name });
    }

    /// <summary>Sets a label (replacing an earlier value).</summary>
    public ContainerBuilder WithLabel(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        return With(_state with { Labels = _state.Labels.SetItem(key, value) });
    }

    /// <summary>Caps memory, Docker-style: <c>64m</c>, <c>1g</c>, <c>512k</c> or bytes. Swap is off, so exceeding it OOM-kills.</summary>
    public ContainerBuilder WithMemoryLimit(string size)
    {
        ArgumentNullException.ThrowIfNull(size);
        return With(_state with { Memory = new MemoryRequest(null, size) });
    }

    /// <summary>Caps memory at <paramref name="bytes"/>. Swap is off, so exceeding it OOM-kills.</summary>
    public ContainerBuilder WithMemoryLimit(long bytes) => With(_state with { Memory = new MemoryRequest(bytes, null) });

    /// <summary>Caps CPU time at <paramref name="cores"/> (0.5 = half of one core).</summary>
    public ContainerBuilder WithCpuLimit(double cores) => With(_state with { Cpus = cores });

    /// <summary>Caps the number of processes and threads.</summary>
    public ContainerBuilder WithPidsLimit(long pids) => With(_state with { Pids = pids });

    /// <summary>Pins the container to CPUs, in cpuset syntax: <c>0-1</c>, <c>0,2</c>.</summary>
    public ContainerBuilder WithCpuset(string cpus)
    {
        ArgumentNullException.ThrowIfNull(cpus);
        return With(_state with { Cpuset = cpus });
    }

    /// <summary>Publishes a TCP port of the container on the host's loopback; reach it with <see cref="IContainer.GetEndpoint"/>. Call once per port.</summary>
    public ContainerBuilder WithPort(int containerPort) => With(_state with { Ports = _state.Ports.Add(containerPort) });

    /// <summary>
    /// Publishes a TCP port of the container on a fixed port of the host's loopback, as <c>docker run -p hostPort:containerPort</c>
    /// (Testcontainers' order: host port first). Starting fails, naming the port, when something else holds it; prefer
    /// <see cref="WithPort"/> (a free ephemeral port) unless a client needs a port known in advance.
    /// </summary>
    public ContainerBuilder WithPortBinding(int hostPort, int containerPort) =>
        With(_state with { PortBindings = _state.PortBindings.Add((hostPort, containerPort)) });

    /// <summary>Binds a host file or directory into the container.</summary>
    /// <param name="hostPath">Absolute path on the host; must exist.</param>
    /// <param name="containerPath">Absolute path inside the container.</param>
    /// <param name="readOnly">True to forbid writes from the container.</param>
    public ContainerBuilder WithBindMount(string hostPath, string containerPath, bool readOnly = false)
    {
        ArgumentNullException.ThrowIfNull(hostPath);
        ArgumentNullException.ThrowIfNull(containerPath);
        return With(_state with { Mounts = _state.Mounts.Add(new MountRequest(MountKind.Bind, hostPath, containerPath, readOnly, null)) });
    }

    /// <summary>Mounts a fresh in-memory filesystem.</summary>
    /// <param name="containerPath">Absolute path inside the container.</param>
    /// <param name="size">Size cap, Docker-style (<c>64m</c>); null means the kernel's default (half of RAM).</param>
    public ContainerBuilder WithTmpfsMount(string containerPath, string? size = null)
    {
        ArgumentNullException.ThrowIfNull(containerPath);
        return With(_state with { Mounts = _state.Mounts.Add(new MountRequest(MountKind.Tmpfs, null, containerPath, false, size)) });
    }

    /// <summary>Shows a host directory in the container through a private overlay: the container may write, the host directory never changes.</summary>
    /// <param name="hostDirectory">Absolute path of an existing host directory.</param>
    /// <param name="containerPath">Absolute path inside the container.</param>
    public ContainerBuilder WithCopyOnWriteMount(string hostDirectory, string containerPath)
    {
        ArgumentNullException.ThrowIfNull(hostDirectory);
        ArgumentNullException.ThrowIfNull(containerPath);
        return With(_state with { Mounts = _state.Mounts.Add(new MountRequest(MountKind.CopyOnWrite, hostDirectory, containerPath, false, null)) });
    }

    /// <summary>Writes <paramref name="content"/> to <paramref name="containerPath"/> before the command starts (parent directories are created).</summary>
    /// <param name="containerPath">Absolute path inside the container.</param>
    /// <param name="content">The bytes (copied now: later changes to the array do not matter).</param>
    /// <param name="mode">Permissions; null means 0644.</param>
    /// <param name="uid">Owner uid inside the container.</param>
    /// <param name="gid">Owner gid inside the container.</param>
    public ContainerBuilder WithFile(string containerPath, byte[] content, UnixFileMode? mode = null, int uid = 0, int gid = 0)
    {
        ArgumentNullException.ThrowIfNull(containerPath);
        ArgumentNullException.ThrowIfNull(content);
        return With(_state with { Files = _state.Files.Add(new FileRequest(containerPath, content.ToArray(), null, mode, uid, gid)) });
    }

    /// <summary>Writes <paramref name="content"/> (UTF-8) to <paramref name="containerPath"/> before the command starts (parent directories are created).</summary>
    /// <param name="containerPath">Absolute path inside the container.</param>
    /// <param name="content">The text, written as UTF-8 without a byte order mark.</param>
    /// <param name="mode">Permissions; null means 0644.</param>
    /// <param name="uid">Owner uid inside the container.</param>
    /// <param name="gid">Owner gid inside the container.</param>
    public ContainerBuilder WithFile(string containerPath, string content, UnixFileMode? mode = null, int uid = 0, int gid = 0)
    {
        ArgumentNullException.ThrowIfNull(containerPath);
        ArgumentNullException.ThrowIfNull(content);
        return With(_state with { Files = _state.Files.Add(new FileRequest(containerPath, Encoding.UTF8.GetBytes(content), null, mode, uid, gid)) });
    }

    /// <summary>Copies the host file <paramref name="hostPath"/> to <paramref name="containerPath"/> before the command starts.</summary>
    /// <param name="hostPath">Absolute path of an existing host file.</param>
    /// <param name="containerPath">Absolute path inside the container.</param>
    /// <param name="mode">Permissions; null means those of the host file.</param>
    /// <param name="uid">Owner uid inside the container.</param>
    /// <param name="gid">Owner gid inside the container.</param>
    public ContainerBuilder WithFileFrom(string hostPath, string containerPath, UnixFileMode? mode = null, int uid = 0, int gid = 0)
    {
        ArgumentNullException.ThrowIfNull(hostPath);
        ArgumentNullException.ThrowIfNull(containerPath);
        return With(_state with { Files = _state.Files.Add(new FileRequest(containerPath, null, hostPath, mode, uid, gid)) });
    }

    /// <summary>Mounts the root filesystem read-only; mounts stay writable unless declared read-only.</summary>
    public ContainerBuilder WithReadOnlyRootFileSystem(bool readOnly = true) => With(_state with { ReadOnlyRoot = readOnly });

    /// <summary>
    /// The seccomp filter (default: Docker's default profile). <see cref="SeccompProfile.Unconfined"/> runs without one;
    /// <see cref="SeccompProfile.FromFile"/> and <see cref="SeccompProfile.FromJson"/> take a Docker-format JSON profile.
    /// </summary>
    public ContainerBuilder WithSeccompProfile(SeccompProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        return With(_state with { Seccomp = profile });
    }

    /// <summary>
    /// The seccomp filter as Docker's <c>--security-opt seccomp=VALUE</c> takes it: a JSON file's path, the JSON itself,
    /// <c>unconfined</c> or <c>default</c>. The profile is read and checked when the spec is built.
    /// </summary>
    public ContainerBuilder WithSeccompProfile(string jsonPathOrContent) => WithSeccompProfile(SeccompProfile.Parse(jsonPathOrContent));

    /// <summary>
    /// The network to attach to: <see cref="Network.Private"/> (default: loopback only) or <see cref="Network.Host"/>
    /// replace the mode; a user-defined network (<see cref="Network.Named"/>, <see cref="Network.Join"/>) is joined
    /// in addition to those given before (call once per network): the container reaches the other members by
    /// name and alias on any port, and they reach it. Its own loopback and published ports stay as they are.
    /// </summary>
    public ContainerBuilder WithNetwork(Network network)
    {
        ArgumentNullException.ThrowIfNull(network);
        return With(network.Kind == NetworkKind.Named
            ? _state with { Networks = _state.Networks.Add(network) }
            : _state with { Network = network });
    }

    /// <summary>Joins the user-defined network called <paramref name="name"/> (Testcontainers' <c>WithNetwork(string)</c>); it must exist when the container is created.</summary>
    public ContainerBuilder WithNetwork(string name) => WithNetwork(Network.Named(name));

    /// <summary>Joins the user-defined network <paramref name="network"/> (Testcontainers' <c>WithNetwork(INetwork)</c>), e.g. one from <see cref="NetworkBuilder"/>.</summary>
    public ContainerBuilder WithNetwork(INetwork network) => WithNetwork(Network.Join(network));

    /// <summary>Further names the container has on every network it joins (besides its container name).</summary>
    public ContainerBuilder WithNetworkAliases(params string[] aliases)
    {
        ArgumentNullException.ThrowIfNull(aliases);
        return With(_state with { NetworkAliases = _state.NetworkAliases.AddRange(aliases) });
    }

    /// <summary>What "ready" means (replaces an earlier strategy; combine several with <see cref="WaitStrategy.And"/>).</summary>
    public ContainerBuilder WaitFor(WaitStrategy strategy)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        return With(_state with { WaitStrategy = strategy });
    }

    /// <summary>How long stopping waits after SIGTERM before SIGKILL (default 10 s).</summary>
    public ContainerBuilder WithStopTimeout(TimeSpan timeout) => With(_state with { StopTimeout = timeout });

    /// <summary>The backend that runs the container; by default <see cref="ContainerBackends.Default"/> (<c>ISOTEST_BACKEND</c>).</summary>
    public ContainerBuilder WithBackend(IContainerBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return With(_state with { Backend = backend });
    }

    /// <summary>The clock readiness waits use (a fake one in tests); by default <see cref="TimeProvider.System"/>.</summary>
    public ContainerBuilder WithTimeProvider(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        return With(_state with { TimeProvider = timeProvider });
    }

    /// <summary>Validates the declaration and returns it as a spec a backend can run.</summary>
    /// <exception cref="InvalidContainerSpecException">Something is wrong; <see cref="InvalidContainerSpecException.Errors"/> lists every problem.</exception>
    public ContainerSpec Build() => ContainerSpecValidator.Validate(_state);

    /// <summary>
    /// Creates and starts the container, then waits until it is ready. On any failure (including
    /// cancellation) the container is removed before the exception propagates: nothing is left behind.
    /// </summary>
    /// <exception cref="InvalidContainerSpecException">The declaration is invalid.</exception>
    /// <exception cref="ContainerStartException">The container could not be created or started.</exception>
    /// <exception cref="WaitTimeoutException">It did not become ready in time.</exception>
    /// <exception cref="ContainerExitedException">Its command exited before it became ready.</exception>
    /// <exception cref="BackendUnavailableException">No backend was given and none can run here.</exception>
    public async Task<IContainer> StartAsync(CancellationToken cancellationToken = default)
    {
        var spec = Build();
        cancellationToken.ThrowIfCancellationRequested();
        var backend = _state.Backend ?? ContainerBackends.Default;
        var oneStep = backend as ICreateStartedBackend;
        IContainer container;
        try
        {
            container = oneStep is not null
                ? await oneStep.CreateStartedAsync(spec, cancellationToken).ConfigureAwait(false)
                : await backend.CreateAsync(spec, cancellationToken).ConfigureAwait(false);
        }
        catch (IsoTestException e) when (Explain(e, backend))
        {
            throw;
        }

        try
        {
            if (oneStep is null)
            {
                try
                {
                    await container.StartAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (IsoTestException e) when (Explain(e, backend))
                {
                    throw;
                }
            }

            if (spec.WaitStrategy is { } wait)
            {
                await wait.WaitAsync(container, _state.TimeProvider ?? TimeProvider.System, cancellationToken).ConfigureAwait(false);
            }

            return container;
        }
        catch (Exception failure)
        {
            try
            {
                await container.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception cleanup)
            {
                // A container that cannot be removed is a leak: say so rather than hide it behind the first error.
                throw new ContainerStartException(
                    container.Id,
                    $"Container {container.Id} failed to start ({failure.Message}) and could not be removed afterwards ({cleanup.Message}): remove it by hand.",
                    Waits.ConditionWaitStrategy.OutputTail(container),
                    new AggregateException(failure, cleanup));
            }

            throw;
        }
    }

    /// <summary>Adds to <paramref name="e"/> what its reader needs to fix it; never catches (a filter that returns false).</summary>
    private bool Explain(IsoTestException e, IContainerBackend backend)
    {
        if (e is ImagePullException && _state.ImageHint is { } hint)
        {
            e.AddNote(hint);
        }

        // A test author sees this exception, not stderr: say that the engine was passed over, and why.
        if (ContainerBackends.FallbackReason(backend) is { } reason)
        {
            e.AddNote(reason);
        }

        return false;
    }

    private ContainerBuilder With(BuilderState state) => new(state);
}

/// <summary>Everything a builder was told, unvalidated (validation happens once, in <see cref="ContainerBuilder.Build"/>).</summary>
internal sealed record BuilderState
{
    public static BuilderState Empty { get; } = new();

    public RootFileSystem? Root { get; init; }

    public ImmutableArray<string> Entrypoint { get; init; } = [];

    public ImmutableArray<string> Command { get; init; } = [];

    public ImmutableDictionary<string, string> Environment { get; init; } = ImmutableDictionary<string, string>.Empty.WithComparers(StringComparer.Ordinal);

    public string? WorkingDirectory { get; init; }

    public string? User { get; init; }

    public string? Hostname { get; init; }

    public string? Name { get; init; }

    public ImmutableDictionary<string, string> Labels { get; init; } = ImmutableDictionary<string, string>.Empty.WithComparers(StringComparer.Ordinal);

    public MemoryRequest? Memory { get; init; }

    public double? Cpus { get; init; }

    public long? Pids { get; init; }

    public string? Cpuset { get; init; }

    public ImmutableList<int> Ports { get; init; } = [];

    public ImmutableList<(int HostPort, int ContainerPort)> PortBindings { get; init; } = [];

    public ImmutableList<MountRequest> Mounts { get; init; } = [];

    public ImmutableList<FileRequest> Files { get; init; } = [];

    public bool ReadOnlyRoot { get; init; }

    public Network Network { get; init; } = Network.Private;

    public ImmutableList<Network> Networks { get; init; } = [];

    public ImmutableList<string> NetworkAliases { get; init; } = [];

    public SeccompProfile Seccomp { get; init; } = SeccompProfile.Default;

    public WaitStrategy? WaitStrategy { get; init; }

    public TimeSpan? StopTimeout { get; init; }

    public ImagePullPolicy? PullPolicy { get; init; }

    public IProgress<ImagePullProgress>? PullProgress { get; init; }

    public string? ImageHint { get; init; }

    public IContainerBackend? Backend { get; init; }

    public TimeProvider? TimeProvider { get; init; }
}

/// <summary>A memory cap as given: bytes, or Docker-style text parsed at validation.</summary>
internal sealed record MemoryRequest(long? Bytes, string? Text);

/// <summary>A mount as given; a tmpfs size is Docker-style text parsed at validation.</summary>
internal sealed record MountRequest(MountKind Kind, string? Source, string Target, bool ReadOnly, string? SizeText);

/// <summary>A file as given: content or a host source path.</summary>
internal sealed record FileRequest(string Target, byte[]? Content, string? SourcePath, UnixFileMode? Mode, int Uid, int Gid);
