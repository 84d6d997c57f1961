namespace IsoTest;

/// <summary>
/// Everything a backend needs to create one container. Produced (and validated) by
/// <c>ContainerBuilder</c>; immutable, so one spec can start many containers.
/// </summary>
public sealed record ContainerSpec
{
    private readonly IReadOnlyList<Network> _networks = [];

    /// <summary>The root filesystem the container sees.</summary>
    public required RootFileSystem RootFileSystem { get; init; }

    /// <summary>The entrypoint; when non-empty it is prepended to <see cref="Command"/>.</summary>
    public IReadOnlyList<string> Entrypoint { get; init; } = [];

    /// <summary>
    /// The command and its arguments (Docker's CMD). With no entrypoint, an image's own ENTRYPOINT (if any)
    /// runs with these as its arguments, as <c>docker run image args</c> does; host and directory roots have
    /// no entrypoint, so there the first element is the program.
    /// </summary>
    public IReadOnlyList<string> Command { get; init; } = [];

    /// <summary>
    /// Environment variables of the payload. As with Docker, a container also gets <c>PATH</c>
    /// (<see cref="DefaultPath"/>), <c>HOSTNAME</c> and <c>HOME</c> unless these set them.
    /// </summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Working directory inside the container; null means <c>/</c>.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>User as <c>uid[:gid]</c> or a name from the root filesystem's <c>/etc/passwd</c>; null means root (uid 0).</summary>
    public string? User { get; init; }

    /// <summary>The container's hostname; null means a name derived from its id.</summary>
    public string? Hostname { get; init; }

    /// <summary>A human-readable name; null means one is generated. Names are unique per backend.</summary>
    public string? Name { get; init; }

    /// <summary>Free-form labels, visible to backends (Docker labels) and to clean-up.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>CPU, memory and pid caps.</summary>
    public ResourceLimits Limits { get; init; } = ResourceLimits.None;

    /// <summary>TCP ports inside the container to publish on the host's loopback.</summary>
    public IReadOnlyList<int> Ports { get; init; } = [];

    /// <summary>
    /// Fixed host ports, by container port (<see cref="ContainerBuilder.WithPortBinding(int, int)"/>, <c>-p 18080:80</c>);
    /// each key is one of <see cref="Ports"/>. A published port not listed here gets a free ephemeral host port.
    /// </summary>
    public IReadOnlyDictionary<int, int> HostPorts { get; init; } = new Dictionary<int, int>();

    /// <summary>Bind, tmpfs and copy-on-write mounts, applied in order.</summary>
    public IReadOnlyList<MountSpec> Mounts { get; init; } = [];

    /// <summary>Files written into the container before its command starts.</summary>
    public IReadOnlyList<FileCopySpec> Files { get; init; } = [];

    /// <summary>When true the root filesystem is mounted read-only (writable mounts still are writable).</summary>
    public bool ReadOnlyRootFileSystem { get; init; }

    /// <summary>
    /// The network the container is attached to: <see cref="IsoTest.Network.Private"/> (default, loopback only),
    /// <see cref="IsoTest.Network.Host"/> or a user-defined one (the first of <see cref="Networks"/>).
    /// </summary>
    public Network Network { get; init; } = Network.Private;

    /// <summary>
    /// Every user-defined network the container joins, in order (besides its private loopback). When none is
    /// given but <see cref="Network"/> names one, that one.
    /// </summary>
    public IReadOnlyList<Network> Networks
    {
        get => _networks.Count > 0 ? _networks : Network.Kind == NetworkKind.Named ? [Network] : [];
        init => _networks = value ?? [];
    }

    /// <summary>Further names of the container on each of its <see cref="Networks"/>.</summary>
    public IReadOnlyList<string> NetworkAliases { get; init; } = [];

    /// <summary>The seccomp filter of the container's processes: Docker's default profile unless told otherwise.</summary>
    public SeccompProfile Seccomp { get; init; } = SeccompProfile.Default;

    /// <summary>What "ready" means; null means ready as soon as the command started.</summary>
    public WaitStrategy? WaitStrategy { get; init; }

    /// <summary>
    /// When an image named by <see cref="RootFileSystem"/> is pulled; null means the backend's default
    /// (<c>ISOTEST_PULL_POLICY</c> on the engine, <c>DockerBackendOptions.PullPolicy</c> on Docker, both
    /// <see cref="ImagePullPolicy.Missing"/> unless set).
    /// </summary>
    public ImagePullPolicy? PullPolicy { get; init; }

    /// <summary>Where a pull of the image reports its progress, per layer; null means nowhere.</summary>
    public IProgress<ImagePullProgress>? PullProgress { get; init; }

    /// <summary>How long <c>StopAsync</c> waits after SIGTERM (or the image's <c>STOPSIGNAL</c>) before SIGKILL.</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The <c>PATH</c> a container gets when its spec (or image) sets none: Docker's default.</summary>
    public const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>The full argv: entrypoint followed by command.</summary>
    public IReadOnlyList<string> Argv => [.. Entrypoint, .. Command];
}

/// <summary>Which filesystem a container sees as <c>/</c>.</summary>
public enum RootFileSystemKind
{
    /// <summary>The host's <c>/</c>, read-only, behind a private writable overlay.</summary>
    Host,

    /// <summary>A directory on the host holding a root filesystem, behind a private writable overlay.</summary>
    Directory,

    /// <summary>An OCI or Docker image reference.</summary>
    Image,

    /// <summary>An image in a file: a <c>docker save</c> archive or an OCI image layout (directory or tar), loaded without a registry.</summary>
    ImageArchive,
}

/// <summary>The root filesystem of a container.</summary>
/// <param name="Kind">Host, directory or image.</param>
/// <param name="Source">The directory path (<see cref="RootFileSystemKind.Directory"/>), image reference (<see cref="RootFileSystemKind.Image"/>) or archive path (<see cref="RootFileSystemKind.ImageArchive"/>); null for the host.</param>
public sealed record RootFileSystem(RootFileSystemKind Kind, string? Source)
{
    /// <summary>The host's root filesystem.</summary>
    public static RootFileSystem Host { get; } = new(RootFileSystemKind.Host, null);

    /// <summary>A root filesystem in a host directory.</summary>
    public static RootFileSystem FromDirectory(string path) => new(RootFileSystemKind.Directory, path);

    /// <summary>An image reference such as <c>busybox:latest</c>.</summary>
    public static RootFileSystem FromImage(string reference) => new(RootFileSystemKind.Image, reference);

    /// <summary>The image in <paramref name="path"/>: a <c>docker save</c> archive or an OCI image layout (directory or tar).</summary>
    public static RootFileSystem FromImageArchive(string path) => new(RootFileSystemKind.ImageArchive, path);

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        RootFileSystemKind.Host => "host",
        RootFileSystemKind.Directory => Source!,
        RootFileSystemKind.ImageArchive => $"image archive {Source}",
        _ => $"image {Source}",
    };
}

/// <summary>Caps enforced through cgroups. A null cap is not enforced.</summary>
/// <param name="MemoryBytes">Memory cap in bytes; swap is off, so going over it OOM-kills.</param>
/// <param name="Cpus">CPU cap in cores (0.5 = half of one core), enforced as a CFS quota.</param>
/// <param name="Pids">Maximum number of processes and threads.</param>
/// <param name="CpusetCpus">CPUs the container may run on, in cpuset syntax (<c>0-1</c>, <c>0,2</c>).</param>
public sealed record ResourceLimits(long? MemoryBytes = null, double? Cpus = null, long? Pids = null, string? CpusetCpus = null)
{
    /// <summary>No caps.</summary>
    public static ResourceLimits None { get; } = new();

    /// <summary>The smallest memory cap (6 MiB): Docker refuses less, and every backend keeps the same floor.</summary>
    public const long MinimumMemoryBytes = 6L << 20;

    /// <summary>True when any cap is set.</summary>
    public bool Any => MemoryBytes is not null || Cpus is not null || Pids is not null || CpusetCpus is not null;
}

/// <summary>How a mount is made.</summary>
public enum MountKind
{
    /// <summary>A host path bound into the container.</summary>
    Bind,

    /// <summary>A fresh in-memory filesystem.</summary>
    Tmpfs,

    /// <summary>A host directory seen through a private overlay: the container may write, the host directory never changes.</summary>
    CopyOnWrite,
}

/// <summary>One mount inside the container.</summary>
/// <param name="Kind">Bind, tmpfs or copy-on-write.</param>
/// <param name="Source">Host path (bind, copy-on-write); null for tmpfs.</param>
/// <param name="Target">Absolute path inside the container.</param>
/// <param name="ReadOnly">Read-only (bind and tmpfs).</param>
/// <param name="SizeBytes">Size cap (tmpfs); null means the kernel's default.</param>
public sealed record MountSpec(MountKind Kind, string? Source, string Target, bool ReadOnly = false, long? SizeBytes = null);

/// <summary>A file written into the container before its command starts.</summary>
/// <param name="Target">Absolute path inside the container; parent directories are created.</param>
/// <param name="Content">The bytes to write, or null when <paramref name="SourcePath"/> is given.</param>
/// <param name="SourcePath">A host file to copy, or null when <paramref name="Content"/> is given.</param>
/// <param name="Mode">Unix permission bits, e.g. <c>0644</c> (octal).</param>
/// <param name="Uid">Owner uid inside the container.</param>
/// <param name="Gid">Owner gid inside the container.</param>
public sealed record FileCopySpec(string Target, ReadOnlyMemory<byte>? Content, string? SourcePath, int Mode = 0b110_100_100, int Uid = 0, int Gid = 0);
