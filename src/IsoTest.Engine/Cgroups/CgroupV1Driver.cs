using System.Collections.Concurrent;
using System.Globalization;

namespace IsoTest.Engine.Cgroups;

/// <summary>
/// cgroup v1: one hierarchy per controller, <c>&lt;root&gt;/&lt;controller&gt;/&lt;parent&gt;/&lt;engine&gt;/&lt;container&gt;</c>.
/// Only the controllers a cap needs are made (and devices, the allowlist): each controller costs a mkdir, its writes
/// and an rmdir on the container's hot path.
/// <para>
/// A memory group only for a memory cap: every memory group holds the kernel's shrinker bookkeeping, one 1 KiB unit per
/// 64 superblocks that ever lived at once on the host (a container mounts ~13), so with n containers alive each new
/// group costs ~n/5 KiB and the host ~n²/5 KiB in all (1.7 MiB per container after 8,300 containers had lived,
/// 2026-12-02). Uncapped, a container's memory is charged to the memory group of the engine's process and its peak is unknown
/// (null); the v2 driver still makes one (the memory controller is on for every group below the engine's).
/// </para>
/// </summary>
internal sealed class CgroupV1Driver : ICgroupDriver
{
    private const long CfsPeriodUs = 100_000;

    private readonly string _root;
    private readonly string[] _parent;
    private readonly ICgroupFileSystem _fs;
    private readonly EngineGroupHolds _holds;

    // Ancestor groups (parent, engine) known to exist and, for cpuset, to have cpus/mems: checked once per
    // driver so a container costs one mkdir per controller, not one per level.
    private readonly ConcurrentDictionary<string, bool> _ready = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _mounted = new(StringComparer.Ordinal);


    public CgroupV1Driver(string root, string parent, ICgroupFileSystem fs)
    {
        _root = root;
        _parent = parent.Split('/', StringSplitOptions.RemoveEmptyEntries);
        _fs = fs;
        _holds = new EngineGroupHolds(fs);
    }

    public int Version => 1;

    public CgroupHandle? Create(string engineId, string containerId, ResourceLimits limits)
    {
        var wanted = new List<(string Controller, bool Required)>(5);
        if (limits.MemoryBytes is not null)
        {
            wanted.Add(("memory", true));
        }

        if (limits.Cpus is not null)
        {
            wanted.Add(("cpu", true));
        }

        if (limits.Pids is not null)
        {
            wanted.Add(("pids", true));
        }

        if (limits.CpusetCpus is not null)
        {
            wanted.Add(("cpuset", true));
        }

        // The device allowlist: required as root (else the container may open any node it mknods); rootless the
        // container is in a user namespace, which cannot make device nodes and mounts nodev, so it is best effort
        // (see CreateGroup).
        wanted.Add(("devices", Environment.IsPrivilegedProcess));

        var made = new List<string>(wanted.Count);
        var madeAncestors = new List<string>();
        try
        {
            foreach (var (controller, required) in wanted)
            {
                var dir = CreateGroup(controller, required, engineId, containerId, limits, madeAncestors);
                if (dir is null)
                {
                    continue;
                }

                made.Add(dir);
                Apply(controller, dir, containerId, limits);
            }
        }
        catch
        {
            Undo(made, madeAncestors);
            throw;
        }

        if (made.Count == 0)
        {
            return null;
        }

        return new CgroupHandle(containerId, made, new CgroupJoin(1, [.. made.Select(dir => dir + "/tasks")]));
    }

    public CgroupStats ReadStats(CgroupHandle handle)
    {
        long? peak = null;
        TimeSpan? cpu = null;
        long oomKills = 0;
        foreach (var dir in handle.Paths)
        {
            peak ??= CgroupTree.ReadLong(_fs, Path.Combine(dir, "memory.max_usage_in_bytes"));

            // memory.failcnt counts every time the limit was hit (reclaim usually succeeds), not kills: only oom_kill counts.
            oomKills += CgroupTree.ReadKeyed(_fs, Path.Combine(dir, "memory.oom_control"), "oom_kill") ?? 0;

            // cpuacct lives in "cpu,cpuacct" on most distributions; a separate cpuacct hierarchy is not made (hot path).
            if (cpu is null && CgroupTree.ReadLong(_fs, Path.Combine(dir, "cpuacct.usage")) is long ns)
            {
                cpu = TimeSpan.FromTicks(ns / 100);
            }
        }

        return new CgroupStats(peak, cpu, oomKills);
    }

    public void Destroy(CgroupHandle handle)
    {
        // No freezer group is made (it would cost another hierarchy per container): kill until empty instead.
        foreach (var dir in handle.Paths)
        {
            CgroupTree.KillAll(_fs, dir);
        }

        foreach (var dir in handle.Paths)
        {
            CgroupTree.Remove(_fs, dir);
        }
    }

    public string JoinRefused(CgroupHandle handle, int moverPid) => CgroupErrors.JoinRefusedV1(handle.Paths, Path.Combine([_root, "<controller>", .. _parent]));

    public IReadOnlyList<string> ListEngineGroups()
    {
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var hierarchy in Hierarchies())
        {
            ids.UnionWith(_fs.ListDirectories(Path.Combine([hierarchy, .. _parent])));
        }

        return [.. ids];
    }

    public void RemoveEngineGroup(string engineId)
    {
        IOException? busy = null;
        foreach (var hierarchy in Hierarchies())
        {
            var dir = Path.Combine([hierarchy, .. _parent, engineId]);
            _ready.TryRemove(dir, out _);
            try
            {
                CgroupTree.RemoveTree(_fs, dir);
            }
            catch (IOException e)
            {
                busy ??= e; // the other hierarchies still go
            }
            finally
            {
                _holds.Release(dir);
            }
        }

        if (busy is not null)
        {
            throw busy;
        }
    }

    public bool RemoveIfUnowned(string engineId) =>
        CgroupTree.RemoveIfUnowned(_fs, [.. Hierarchies().Select(h => Path.Combine([h, .. _parent, engineId]))]);

    /// <summary>True when at least one v1 controller hierarchy is mounted under the root.</summary>
    public bool HasAnyController() =>
        IsMounted("memory") || IsMounted("cpu") || IsMounted("pids") || IsMounted("cpuset") || IsMounted("devices");

    private IEnumerable<string> Hierarchies() =>
        _fs.ListDirectories(_root).Select(name => Path.Combine(_root, name)).Where(h => _fs.Exists(Path.Combine(h, "cgroup.procs")));

    private bool IsMounted(string controller) =>
        _mounted.GetOrAdd(controller, c => _fs.Exists(Path.Combine(_root, c, "cgroup.procs")));

    private string? CreateGroup(string controller, bool required, string engineId, string containerId, ResourceLimits limits, List<string> madeAncestors)
    {
        var hierarchy = Path.Combine(_root, controller);
        var cap = CgroupErrors.Describe(controller, limits);
        var delegateDir = Path.Combine([hierarchy, .. _parent]);
        if (!IsMounted(controller))
        {
            return required ? throw CgroupErrors.MissingController(1, cap, containerId, controller, hierarchy) : null;
        }

        var engineDir = Path.Combine([hierarchy, .. _parent, engineId]);
        var dir = Path.Combine(engineDir, containerId);
        for (var attempt = 0; ; attempt++)
        {
            var (error, failedPath) = EnsureAncestors(hierarchy, controller, engineId, madeAncestors);
            if (error.IsOk)
            {
                error = _fs.CreateDirectory(dir);
                failedPath = dir;
                if (error.IsOk)
                {
                    return dir;
                }

                // An ancestor we cached was removed under us (a failed create undone, a sweep): make it again, once.
                if (error.Outcome == FsOutcome.NotFound && attempt == 0)
                {
                    ForgetAncestors(hierarchy);
                    continue;
                }
            }

            // devices: a caller that may not make the group is not root (or sees a read-only cgroupfs inside another
            // container): a user namespace, or the outer container's own devices group, confines it instead.
            if (!required || (controller == "devices" && CgroupErrors.IsPermission(error)))
            {
                return null;
            }

            if (error.Outcome == FsOutcome.Exists)
            {
                throw new ResourceLimitException($"Container {containerId}: cannot enforce {cap}: cgroup {dir} already exists (a container id was reused, or a previous run left it: remove it with rmdir).");
            }

            throw CgroupErrors.CannotCreate(1, cap, containerId, failedPath, error, delegateDir);
        }
    }

    private (FsResult Error, string Path) EnsureAncestors(string hierarchy, string controller, string engineId, List<string> madeAncestors)
    {
        var path = hierarchy;
        string[] segments = [.. _parent, engineId];
        for (var i = 0; i < segments.Length; i++)
        {
            var parentPath = path;
            path = Path.Combine(path, segments[i]);
            if (_ready.ContainsKey(path))
            {
                continue;
            }

            // The engine group is made held: from then on no other engine's sweep takes it for a dead engine's.
            var error = i < segments.Length - 1 ? _fs.CreateDirectory(path) : _holds.Ensure(path, madeAncestors);
            if (error.IsOk && i < segments.Length - 1)
            {
                madeAncestors.Add(path);
            }

            if (!error.IsOk && error.Outcome != FsOutcome.Exists)
            {
                return (error, path);
            }

            // A new v1 cpuset group starts with empty cpus/mems and no task can join it: every level between the
            // hierarchy root and the container must carry them (cgroup.clone_children is usually off).
            if (controller == "cpuset")
            {
                foreach (var file in (string[])["cpuset.cpus", "cpuset.mems"])
                {
                    if (_fs.ReadFile(Path.Combine(path, file), out var own).IsOk && own!.Trim().Length == 0)
                    {
                        var copyError = _fs.ReadFile(Path.Combine(parentPath, file), out var inherited);
                        if (copyError.IsOk)
                        {
                            copyError = _fs.WriteFile(Path.Combine(path, file), inherited!.Trim());
                        }

                        if (!copyError.IsOk)
                        {
                            return (copyError, Path.Combine(path, file));
                        }
                    }
                }
            }

            _ready.TryAdd(path, true);
        }

        return (FsResult.Ok, path);
    }

    private void ForgetAncestors(string hierarchy)
    {
        foreach (var key in _ready.Keys)
        {
            if (key.StartsWith(hierarchy + "/", StringComparison.Ordinal))
            {
                _ready.TryRemove(key, out _);
            }
        }
    }

    private void Apply(string controller, string dir, string containerId, ResourceLimits limits)
    {
        var cap = CgroupErrors.Describe(controller, limits);
        var delegateDir = Path.Combine([_root, controller, .. _parent]);
        void Write(string file, string value)
        {
            var path = Path.Combine(dir, file);
            var error = _fs.WriteFile(path, value);
            if (!error.IsOk)
            {
                throw CgroupErrors.WriteFailed(1, cap, containerId, path, value, error, delegateDir);
            }
        }

        switch (controller)
        {
            case "memory" when limits.MemoryBytes is long memory:
                var bytes = memory.ToString(CultureInfo.InvariantCulture);

                // memsw (memory + swap) must be >= the memory limit, so it is written second; equal means no swap.
                // It is absent when swap accounting is off (swapaccount=0): then only swappiness=0 keeps pages in RAM.
                Write("memory.limit_in_bytes", bytes);
                if (_fs.Exists(Path.Combine(dir, "memory.memsw.limit_in_bytes")))
                {
                    Write("memory.memsw.limit_in_bytes", bytes);
                }
                else
                {
                    Write("memory.swappiness", "0");
                }

                break;
            case "cpu" when limits.Cpus is double cpus:
                Write("cpu.cfs_period_us", CfsPeriodUs.ToString(CultureInfo.InvariantCulture));
                Write("cpu.cfs_quota_us", ((long)Math.Round(cpus * CfsPeriodUs)).ToString(CultureInfo.InvariantCulture));
                break;
            case "pids" when limits.Pids is long pids:
                Write("pids.max", pids.ToString(CultureInfo.InvariantCulture));
                break;
            case "devices":
                // A new group copies its parent's list (usually a *:* rwm): deny all, then allow Docker's list.
                Write("devices.deny", "a");
                foreach (var rule in Security.DeviceRules.DockerDefault)
                {
                    Write("devices.allow", rule.ToCgroupV1());
                }

                break;
            case "cpuset" when limits.CpusetCpus is string cpus:
                Write("cpuset.cpus", cpus);
                var parentMems = Path.Combine(Path.GetDirectoryName(dir)!, "cpuset.mems");
                var error = _fs.ReadFile(parentMems, out var mems);
                if (!error.IsOk)
                {
                    throw CgroupErrors.WriteFailed(1, cap, containerId, parentMems, "(read)", error, delegateDir);
                }

                Write("cpuset.mems", mems!.Trim());
                break;
        }
    }

    private void Undo(List<string> made, List<string> madeAncestors)
    {
        foreach (var dir in made)
        {
            CgroupTree.TryRemove(_fs, dir);
        }

        // Deepest first; an ancestor another container already uses is not empty and stays (rmdir says EBUSY).
        for (var i = madeAncestors.Count - 1; i >= 0; i--)
        {
            _ready.TryRemove(madeAncestors[i], out _);
            if (_fs.RemoveDirectory(madeAncestors[i]).IsOk)
            {
                _holds.Release(madeAncestors[i]);
            }
        }
    }
}
