using IsoTest.Engine.Native;

namespace IsoTest.Engine.Cgroups;

/// <summary>Picks the cgroup driver for this machine.</summary>
internal static class CgroupDriver
{
    /// <summary>Where cgroupfs is mounted on every mainstream distribution.</summary>
    public const string DefaultRoot = "/sys/fs/cgroup";

    /// <summary>The group under which every engine makes its engine group.</summary>
    public const string DefaultParent = "isotest";

    /// <summary>Overrides <see cref="DefaultParent"/>, e.g. with a cgroup delegated to a non-root user.</summary>
    public const string ParentVariable = "ISOTEST_CGROUP_PARENT";

    /// <summary>
    /// statfs(<paramref name="root"/>): cgroup2 → v2 (unified); tmpfs → v1 per-controller hierarchies (legacy and
    /// hybrid machines, where <c>unified/</c> carries no controllers the v1 hierarchies hold). A tmpfs with no v1
    /// controller mounted but a cgroup2 <c>unified/</c> is treated as v2 there. Null when no cgroupfs is mounted:
    /// containers then run without cgroups, and any cap is an error the caller reports.
    /// </summary>
    /// <param name="root">The cgroupfs mount point.</param>
    /// <param name="parent">The parent group (relative to each hierarchy); null reads <see cref="ParentVariable"/>.</param>
    public static ICgroupDriver? Detect(string root = DefaultRoot, string? parent = null)
    {
        parent ??= ParentFromEnvironment();
        if (Interop.GetFileSystemType(root, out var type) != 0)
        {
            return null;
        }

        if (type == Interop.Cgroup2SuperMagic)
        {
            return new CgroupV2Driver(root, parent, CgroupFileSystem.Instance);
        }

        if (type != Interop.TmpfsMagic)
        {
            return null;
        }

        var v1 = new CgroupV1Driver(root, parent, CgroupFileSystem.Instance);
        if (!v1.HasAnyController()
            && Interop.GetFileSystemType(Path.Combine(root, "unified"), out var unified) == 0
            && unified == Interop.Cgroup2SuperMagic)
        {
            return new CgroupV2Driver(Path.Combine(root, "unified"), parent, CgroupFileSystem.Instance);
        }

        return v1;
    }

    /// <summary>The parent group name: <see cref="ParentVariable"/> when set, else <see cref="DefaultParent"/>.</summary>
    public static string ParentFromEnvironment()
    {
        var value = Environment.GetEnvironmentVariable(ParentVariable)?.Trim().Trim('/');
        return string.IsNullOrEmpty(value) ? DefaultParent : value;
    }
}
