using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Networking;
using IsoTest.Engine.Process;
using IsoTest.Engine.RootFs;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Containers;

/// <summary>
/// The services every container of one engine uses, and nothing else: the loop that talks to agents, the
/// cgroup and network drivers, the root filesystem providers, the state directory, the clock and the log.
/// Containers get this, not the engine, so what a container may touch is written down here.
/// </summary>
internal sealed record EngineContext(
    EngineLoop Loop,
    string AgentPath,
    SafeFileHandle DevNull,
    ICgroupDriver Cgroups,
    INetworkDriver Network,
    RootFsProviders RootFs,
    EngineState State,
    ContainerRegistry Registry,
    bool IsRoot,
    TimeProvider Time,
    Action<string> Log)
{
    /// <summary>
    /// Each command runs as PID 1 of a PID namespace of its own (dockerd's semantics without <c>--init</c>), not as
    /// init's child: the API server sets it, so Docker clients see dockerd's signal behaviour (native/PROTOCOL.md, <c>pid1</c>).
    /// </summary>
    public bool CommandIsPid1 { get; set; }
    /// <summary>Rootless: the caller's subordinate id ranges, which the containers' user namespaces map (null: the caller's ids only).</summary>
    public SubordinateIds? Ranges { get; init; }

    /// <summary>Rootless: the user namespaces private containers join, one per distinct maps (null as root).</summary>
    public Namespaces.SharedUserNamespaces? UserNamespaces { get; init; }

    /// <summary>With <see cref="UserNamespaces"/>: host-root mirrors made ahead of the starts that take them (null otherwise).</summary>
    public HostMirrors? HostMirrors { get; init; }

    /// <summary>With <see cref="UserNamespaces"/>: network namespaces made ahead in them for private containers (null otherwise).</summary>
    public UserNetnsPools? UserNetns { get; init; }

    /// <summary>
    /// Marks a container creation in flight until disposed, for every pool that makes network namespaces ahead (the
    /// driver's as root, <see cref="UserNetns"/> rootless) and for the host mirrors' makers (<see cref="HostMirrors"/>,
    /// every creation: they take the mount locks any start needs): none makes one meanwhile (<see cref="NetnsPool"/>: why).
    /// </summary>
    public IDisposable BeginCreate(ContainerSpec spec) =>
        new Holds(Network.BeginCreate(spec), spec.Network.Kind != NetworkKind.Host ? UserNetns?.Hold() : null, HostMirrors?.Hold());

    private sealed class Holds(IDisposable? network, IDisposable? userNetns, IDisposable? mirrors) : IDisposable
    {
        public void Dispose()
        {
            network?.Dispose();
            userNetns?.Dispose();
            mirrors?.Dispose();
        }
    }
}
