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
    /// <summary>Rootless: the caller's subordinate id ranges, which the containers' user namespaces map (null: the caller's ids only).</summary>
    public SubordinateIds? Ranges { get; init; }
}
