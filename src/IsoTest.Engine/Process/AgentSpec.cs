using System.Globalization;

namespace IsoTest.Engine.Process;

/// <summary>
/// Builds the `spec` message (native/PROTOCOL.md): records of a key and a fixed number of values.
/// Everything the agent needs is resolved here, in managed code, so the C side only executes.
/// </summary>
internal sealed class AgentSpec
{
    private readonly List<string> _fields = ["spec"];

    public AgentSpec Add(string key, params string[] values)
    {
        _fields.Add(key);
        _fields.AddRange(values);
        return this;
    }

    public IReadOnlyList<string> Fields => _fields;

    public static AgentSpec For(
        ContainerSpec spec,
        RootFs.ResolvedRoot root,
        string hostname,
        RootFs.ResolvedUser user,
        RootFs.IdMaps? idMaps,
        IEnumerable<(string Key, string Value)> cgroupRecords,
        IEnumerable<(string HostPath, FileCopySpec File)> files,
        Networking.NetnsMode netns)
    {
        var s = new AgentSpec();
        s.Add("root", root.IsHost ? "host" : root.LowerDirectories[0]);
        foreach (var lower in root.LowerDirectories.Skip(1))
        {
            s.Add("lower", lower); // an image's further layers, topmost first
        }

        s.Add("readonly", spec.ReadOnlyRootFileSystem ? "1" : "0");
        if (idMaps is not null)
        {
            s.Add("userns", idMaps.UidMap, idMaps.GidMap);
        }

        // 2: join the ready namespace the engine passes as fd 4 (Networking/NetnsPool) instead of making one.
        s.Add("netns", Num((int)netns));
        s.Add("hostname", hostname);
        s.Add("uid", Num(user.Uid)).Add("gid", Num(user.Gid));
        // The command, its environment and working directory come with `start` (EngineContainer.StartAsync),
        // so setting up a sandbox does not depend on what it will run.

        foreach (var mount in spec.Mounts)
        {
            switch (mount.Kind)
            {
                case MountKind.Bind:
                    s.Add("bind", Path.GetFullPath(mount.Source!), mount.Target, mount.ReadOnly ? "ro" : "rw");
                    break;
                case MountKind.Tmpfs:
                    s.Add("tmpfs", mount.Target, mount.SizeBytes is { } size ? $"size={Num(size)}" : "", mount.ReadOnly ? "ro" : "rw");
                    break;
                case MountKind.CopyOnWrite:
                    s.Add("cow", Path.GetFullPath(mount.Source!), mount.Target);
                    break;
            }
        }

        foreach (var (hostPath, file) in files)
        {
            s.Add("file", hostPath, file.Target, Convert.ToString(file.Mode, 8), Num(file.Uid), Num(file.Gid));
        }

        foreach (var (key, value) in cgroupRecords)
        {
            s.Add(key, value);
        }

        var (layer, tmp, run) = TmpfsSizes(spec.Limits.MemoryBytes);
        s.Add("sizes", Num(layer), Num(tmp), Num(run));
        if (Security.SeccompFilters.For(spec.Seccomp) is { } seccomp)
        {
            s.Add("seccomp", Num(seccomp.Flags), Convert.ToHexString(seccomp.Filter));
        }

        return s;
    }

    /// <summary>
    /// Caps of the tmpfs that hold the writable layer, /tmp and /run (issue 8): uncapped, each may take half
    /// the host's RAM. With a memory cap, half of it each: tmpfs pages count against the cap, and a full
    /// tmpfs is ENOSPC, which says more than the OOM killer does.
    /// </summary>
    internal static (long Layer, long Tmp, long Run) TmpfsSizes(long? memoryBytes) =>
        memoryBytes is { } m ? (m / 2, m / 2, Math.Min(m / 2, 64L << 20)) : (1L << 30, 1L << 30, 64L << 20);

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);
}
