namespace IsoTest.Engine.Cgroups;

// TEMPORARY until the cgroups branch merges.
internal static class CgroupDriver
{
    public static ICgroupDriver Detect() => new NoCgroups();

    private sealed class NoCgroups : ICgroupDriver
    {
        public int Version => 0;
        public CgroupHandle? Create(string engineId, string containerId, ResourceLimits limits) => null;
        public CgroupStats ReadStats(CgroupHandle handle) => new(null, null, 0);
        public void Destroy(CgroupHandle handle) { }
        public IReadOnlyList<string> ListEngineGroups() => [];
        public void RemoveEngineGroup(string engineId) { }
    }
}
