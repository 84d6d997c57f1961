namespace IsoTest.Engine.Cgroups;

/// <summary>No cgroup filesystem on this machine: containers run uncapped, and asking for a cap is an error.</summary>
internal sealed class UnavailableCgroupDriver(string root) : ICgroupDriver
{
    public int Version => 0;

    public CgroupHandle? Create(string engineId, string containerId, ResourceLimits limits) =>
        limits.Any
            ? throw new ResourceLimitException($"Cannot enforce caps: {root} is not a cgroup filesystem (v1 or v2). Mount cgroupfs there (most distributions do at boot) or drop the memory/CPU/pids caps.")
            : null;

    public CgroupStats ReadStats(CgroupHandle handle) => new(null, null, 0);

    public void Destroy(CgroupHandle handle)
    {
    }

    public string JoinRefused(CgroupHandle handle, int moverPid) => "there is no cgroup filesystem";

    public IReadOnlyList<string> ListEngineGroups() => [];

    public void RemoveEngineGroup(string engineId)
    {
    }

    public bool RemoveIfUnowned(string engineId) => false;
}
