namespace IsoTest.Engine.Cgroups;

/// <summary>
/// cgroups v1 (one hierarchy per controller) and v2 (unified) behind one interface.
/// Layout: &lt;root&gt;/isotest/&lt;engineId&gt;/&lt;containerId&gt; (v1: under each controller's hierarchy), so
/// a dead engine's containers are swept by removing its engine group.
/// </summary>
internal interface ICgroupDriver
{
    /// <summary>1 or 2.</summary>
    int Version { get; }

    /// <summary>
    /// Creates the container's cgroup(s) and writes every cap before the payload runs. Returns null when
    /// no cap is requested and no cgroup can be made (rootless without delegation): the container then
    /// runs without a cgroup. Throws <see cref="ResourceLimitException"/> when a requested cap cannot be
    /// enforced, saying why and how to fix it; nothing is left behind.
    /// </summary>
    CgroupHandle? Create(string engineId, string containerId, ResourceLimits limits);

    /// <summary>Peak memory, CPU time and OOM kills so far. Best effort: missing files give nulls.</summary>
    CgroupStats ReadStats(CgroupHandle handle);

    /// <summary>Kills every process left in the cgroup, then removes it. Idempotent; "already gone" is not an error.</summary>
    void Destroy(CgroupHandle handle);

    /// <summary>
    /// Why the kernel may have refused to move init into the container's group (EACCES), and the fix.
    /// <paramref name="moverPid"/> is a process in the group init starts from (the engine's spawner), 0 when unknown.
    /// </summary>
    string JoinRefused(CgroupHandle handle, int moverPid);

    /// <summary>
    /// The names of the groups directly under the engines' parent: engine groups, and anything else that shares the
    /// parent. The sweep keeps only engine-id-shaped names (EngineState.IsEngineId).
    /// </summary>
    IReadOnlyList<string> ListEngineGroups();

    /// <summary>
    /// Kills and removes everything under an engine group (a dead engine's leftovers, or this engine's at dispose),
    /// and drops this engine's hold on it. Throws IOException when a group stays busy (see CgroupTree.Remove).
    /// </summary>
    void RemoveEngineGroup(string engineId);

    /// <summary>
    /// Removes an engine group that no live engine holds and no process is in (see CgroupTree.RemoveIfUnowned);
    /// false when it is held, busy or gone. Every engine holds its own groups from the moment it makes them.
    /// </summary>
    bool RemoveIfUnowned(string engineId);
}

/// <summary>A container's cgroup(s). What the init agent needs to join them is in <see cref="Join"/>.</summary>
/// <param name="ContainerId">The container.</param>
/// <param name="Paths">Directories created (v1: one per controller; v2: one).</param>
/// <param name="Join">Where init puts itself (the protocol's records for it are Process/AgentProtocol's business).</param>
internal sealed record CgroupHandle(string ContainerId, IReadOnlyList<string> Paths, CgroupJoin Join);

/// <summary>How init joins a container's cgroup(s).</summary>
/// <param name="Version">1: init writes itself into each <paramref name="Targets"/> (tasks files); 2: it is cloned into the one directory.</param>
/// <param name="Targets">v1: a tasks file per controller; v2: the cgroup directory.</param>
/// <param name="SelfMove">v2: init writes itself into cgroup.procs instead of being cloned in (what kernels before 5.7 do).</param>
internal sealed record CgroupJoin(int Version, IReadOnlyList<string> Targets, bool SelfMove = false);

/// <summary>Resource use read from a cgroup.</summary>
/// <param name="PeakMemoryBytes">Peak memory, null when unknown.</param>
/// <param name="CpuTime">CPU time, null when unknown.</param>
/// <param name="OomKills">Number of OOM kills in the cgroup.</param>
internal sealed record CgroupStats(long? PeakMemoryBytes, TimeSpan? CpuTime, long OomKills);
