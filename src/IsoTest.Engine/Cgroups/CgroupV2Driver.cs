using System.Collections.Concurrent;
using System.Globalization;

namespace IsoTest.Engine.Cgroups;

/// <summary>
/// cgroup v2 (unified): one group per container, <c>&lt;root&gt;/&lt;parent&gt;/&lt;engine&gt;/&lt;container&gt;</c>. The
/// controllers a cap needs (and memory, for peak memory and OOM reporting) are enabled in
/// <c>cgroup.subtree_control</c> of the parent and the engine group once per driver; the init agent joins with
/// <c>CLONE_INTO_CGROUP</c>.
/// </summary>
internal sealed class CgroupV2Driver : ICgroupDriver
{
    private const long CpuPeriodUs = 100_000;

    private readonly string _root;
    private readonly string[] _parent;
    private readonly string _parentDir;
    private readonly ICgroupFileSystem _fs;
    private readonly EngineGroupHolds _holds;

    // Engine groups whose ancestors already enable a given controller set ("dir|memory,pids"): checked once.
    private readonly ConcurrentDictionary<string, bool> _ready = new(StringComparer.Ordinal);


    public CgroupV2Driver(string root, string parent, ICgroupFileSystem fs)
    {
        _root = root;
        _parent = parent.Split('/', StringSplitOptions.RemoveEmptyEntries);
        _parentDir = Path.Combine([root, .. _parent]);
        _fs = fs;
        _holds = new EngineGroupHolds(fs);
    }

    public int Version => 2;

    /// <summary>
    /// Init writes itself into the group's cgroup.procs instead of being cloned into it: the path the agent takes by
    /// itself on kernels without <c>CLONE_INTO_CGROUP</c> (before 5.7), forced so that tests run it on any kernel.
    /// </summary>
    internal bool SelfMove { get; init; }

    public CgroupHandle? Create(string engineId, string containerId, ResourceLimits limits)
    {
        var required = new List<string>(4);
        if (limits.MemoryBytes is not null)
        {
            required.Add("memory");
        }

        if (limits.Cpus is not null)
        {
            required.Add("cpu");
        }

        if (limits.Pids is not null)
        {
            required.Add("pids");
        }

        if (limits.CpusetCpus is not null)
        {
            required.Add("cpuset");
        }

        var engineDir = Path.Combine(_parentDir, engineId);
        var dir = Path.Combine(engineDir, containerId);
        var madeAncestors = new List<string>();
        var made = false;
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                if (!EnsureAncestors(engineId, containerId, limits, required, madeAncestors))
                {
                    return null;
                }

                var error = _fs.CreateDirectory(dir);
                if (error.IsOk)
                {
                    made = true;
                    break;
                }

                // An ancestor we cached was removed under us (a failed create undone, a sweep): make it again, once.
                if (error.Outcome == FsOutcome.NotFound && attempt == 0)
                {
                    _ready.Clear();
                    continue;
                }

                if (required.Count == 0 && CgroupErrors.IsPermission(error))
                {
                    return null;
                }

                if (error.Outcome == FsOutcome.Exists)
                {
                    throw new ResourceLimitException($"Container {containerId}: cgroup {dir} already exists (a container id was reused, or a previous run left it: remove it with rmdir).");
                }

                throw CgroupErrors.CannotCreate(2, Caps(required, limits), containerId, dir, error, _parentDir);
            }

            Apply(dir, containerId, limits);
            AttachDeviceFilter(dir, containerId);
        }
        catch
        {
            if (made)
            {
                CgroupTree.TryRemove(_fs, dir);
            }

            for (var i = madeAncestors.Count - 1; i >= 0; i--)
            {
                _ready.Clear();
                if (_fs.RemoveDirectory(madeAncestors[i]).IsOk)
                {
                    _holds.Release(madeAncestors[i]);
                }
            }

            throw;
        }

        return new CgroupHandle(containerId, [dir], new CgroupJoin(2, [dir], SelfMove));
    }

    public CgroupStats ReadStats(CgroupHandle handle)
    {
        var dir = handle.Paths[0];
        var peak = CgroupTree.ReadLong(_fs, Path.Combine(dir, "memory.peak"));
        var usage = CgroupTree.ReadKeyed(_fs, Path.Combine(dir, "cpu.stat"), "usage_usec");
        var oomKills = CgroupTree.ReadKeyed(_fs, Path.Combine(dir, "memory.events"), "oom_kill") ?? 0;
        return new CgroupStats(peak, usage is long us ? TimeSpan.FromMicroseconds(us) : null, oomKills);
    }

    public void Destroy(CgroupHandle handle)
    {
        foreach (var dir in handle.Paths)
        {
            Kill(dir);
            CgroupTree.Remove(_fs, dir);
        }
    }

    public IReadOnlyList<string> ListEngineGroups() => [.. _fs.ListDirectories(_parentDir).Order(StringComparer.Ordinal)];

    public void RemoveEngineGroup(string engineId)
    {
        var dir = Path.Combine(_parentDir, engineId);
        _ready.Clear();

        // cgroup.kill on the engine group kills every container below it in one write.
        try
        {
            Kill(dir);
            CgroupTree.RemoveTree(_fs, dir);
        }
        finally
        {
            _holds.Release(dir);
        }
    }

    public bool RemoveIfUnowned(string engineId) => CgroupTree.RemoveIfUnowned(_fs, [Path.Combine(_parentDir, engineId)]);

    private void Kill(string dir)
    {
        // cgroup.kill (5.14+) kills the whole subtree without racing forks; older kernels: kill until empty.
        var killFile = Path.Combine(dir, "cgroup.kill");
        if (!_fs.Exists(killFile) || !_fs.WriteFile(killFile, "1").IsOk)
        {
            CgroupTree.KillAll(_fs, dir);
        }
    }

    /// <summary>
    /// Makes the parent and engine groups and enables the controllers in their subtree_control. False when
    /// no cap is requested and no group can be made here (the container runs without one).
    /// </summary>
    private bool EnsureAncestors(string engineId, string containerId, ResourceLimits limits, List<string> required, List<string> madeAncestors)
    {
        var key = _parentDir + "/" + engineId + "|" + string.Join(',', required);
        if (_ready.ContainsKey(key))
        {
            return true;
        }

        var caps = Caps(required, limits);
        var path = _root;
        foreach (var segment in _parent)
        {
            path = Path.Combine(path, segment);
            var error = _fs.CreateDirectory(path);
            if (error.IsOk)
            {
                madeAncestors.Add(path);
            }
            else if (error.Outcome != FsOutcome.Exists)
            {
                return Unavailable(error, path);
            }
        }

        // The engine group is made held: from then on no other engine's sweep takes it for a dead engine's.
        var engineDir = Path.Combine(_parentDir, engineId);
        var held = _holds.Ensure(engineDir, madeAncestors);
        if (!held.IsOk)
        {
            return Unavailable(held, engineDir);
        }

        // False when no cap is requested and no group can be made here (the container runs without one); else throws.
        bool Unavailable(FsResult error, string at) => required.Count == 0 && CgroupErrors.IsPermission(error)
            ? false
            : throw CgroupErrors.CannotCreate(2, caps, containerId, at, error, _parentDir);

        // The parent's own cgroup.controllers is what was delegated to us. If a controller is missing there, try
        // once to enable it one level up (works as root, e.g. cpuset that systemd leaves off), else say so.
        var available = ReadControllers(_parentDir);
        var enable = new List<string>(required);
        if (available.Contains("memory") && !required.Contains("memory"))
        {
            enable.Add("memory");
        }

        var missing = required.Where(c => !available.Contains(c)).ToList();
        if (missing.Count > 0)
        {
            var above = Path.GetDirectoryName(_parentDir)!;
            var enabled = _fs.WriteFile(Path.Combine(above, "cgroup.subtree_control"), string.Join(' ', missing.Select(c => "+" + c)));
            available = ReadControllers(_parentDir);
            foreach (var controller in missing)
            {
                if (!available.Contains(controller))
                {
                    var why = enabled.Outcome == FsOutcome.Busy
                        ? $"{above} has processes of its own, and cgroup v2 enables no controller for the children of such a group (\"no internal processes\"): move them into a leaf group."
                        : null;
                    throw CgroupErrors.MissingController(2, CgroupErrors.Describe(controller, limits), containerId, controller, Path.Combine(_parentDir, "cgroup.controllers"), why);
                }
            }
        }

        // Enable from the parent downward: each level's subtree_control decides what its children get. The parent
        // (the delegated group) gets every controller the engine uses at once, with the engine's first container:
        // enabling one later moves every process of the parent's subtree into it, and the kernel refuses (EPERM)
        // to move a process with privileges the engine lacks, such as the setuid newuidmap a rootless engine runs
        // for each start in its own group beside the engine groups. Enabled before any start, no such move comes.
        var atParent = new List<string>(enable);
        atParent.AddRange(Used.Where(c => available.Contains(c) && !atParent.Contains(c)));
        EnableSubtree(_parentDir, atParent, required, containerId, limits);
        EnableSubtree(Path.Combine(_parentDir, engineId), enable, required, containerId, limits);

        _ready.TryAdd(key, true);
        return true;
    }

    /// <summary>The controllers the engine's caps use (memory also for peak memory and OOM reporting).</summary>
    private static readonly string[] Used = ["memory", "cpu", "pids", "cpuset"];

    /// <summary>
    /// Enables <paramref name="enable"/> for the children of <paramref name="dir"/>. Only the
    /// <paramref name="required"/> ones (what a cap of this container needs) must succeed; the others are enabled
    /// if the kernel lets us.
    /// </summary>
    private void EnableSubtree(string dir, List<string> enable, List<string> required, string containerId, ResourceLimits limits)
    {
        var file = Path.Combine(dir, "cgroup.subtree_control");
        _fs.ReadFile(file, out var current);
        var already = CgroupTree.Words(current);
        var todo = enable.Where(c => !already.Contains(c)).ToList();
        if (todo.Count == 0)
        {
            return;
        }

        var value = string.Join(' ', todo.Select(c => "+" + c));
        var error = WriteSubtreeControl(file, value);
        if (error.IsOk)
        {
            return;
        }

        var requiredTodo = todo.Where(required.Contains).ToList();
        if (requiredTodo.Count == 0)
        {
            return;
        }

        if (requiredTodo.Count < todo.Count)
        {
            value = string.Join(' ', requiredTodo.Select(c => "+" + c));
            error = WriteSubtreeControl(file, value);
            if (error.IsOk)
            {
                return;
            }
        }

        var why = error.Outcome switch
        {
            FsOutcome.Busy => $" The group has processes of its own (cgroup v2 lets only leaf groups hold processes when controllers are enabled): move them out of {dir}.",
            FsOutcome.NotPermitted => $" The kernel would not move a process of {dir}'s subtree that holds privileges this user lacks (a setuid program such as sudo, su or newuidmap) "
                + $"into the new controller: end it, or enable the controllers once as root before the engine runs (echo '{value}' > {file}).",
            _ => "",
        };
        var ex = CgroupErrors.WriteFailed(2, Caps(requiredTodo, limits), containerId, file, value, error, _parentDir);
        throw why.Length == 0 ? ex : new ResourceLimitException(ex.Message + why);
    }

    /// <summary>
    /// Writes cgroup.subtree_control, retrying an EPERM for up to ~0.2 s: it comes from a privileged process in the
    /// subtree (see <see cref="EnsureAncestors"/>), and the ones a rootless engine itself starts (newuidmap) live
    /// a few milliseconds.
    /// </summary>
    private FsResult WriteSubtreeControl(string file, string value)
    {
        var error = _fs.WriteFile(file, value);
        for (var attempt = 0; error.Outcome == FsOutcome.NotPermitted && attempt < 20; attempt++)
        {
            Thread.Sleep(10);
            error = _fs.WriteFile(file, value);
        }

        return error;
    }

    public string JoinRefused(CgroupHandle handle, int moverPid)
    {
        // The task that moves is init, forked by the engine's spawner: its group is the spawner's, which is where the
        // engine ran when it started its first container (the same group unless the engine process moved since).
        var target = handle.Paths[0];
        var mover = GroupOf(moverPid > 0 ? $"/proc/{moverPid}/cgroup" : "/proc/self/cgroup") ?? GroupOf("/proc/self/cgroup");
        return CgroupErrors.JoinRefusedV2(target, mover, mover is null ? null : CommonAncestor(mover, target));
    }

    /// <summary>A process's group ("0::/path" in /proc/PID/cgroup), as a path below the root; null when unreadable.</summary>
    private string? GroupOf(string procCgroupFile)
    {
        if (!_fs.ReadFile(procCgroupFile, out var text).IsOk)
        {
            return null;
        }

        var line = text!.Split('\n').FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal));
        return line is null ? null : Path.TrimEndingDirectorySeparator(Path.Join(_root, line[3..]));
    }

    private static string CommonAncestor(string a, string b)
    {
        var x = a.Split('/');
        var y = b.Split('/');
        var n = 0;
        while (n < x.Length && n < y.Length && x[n] == y[n])
        {
            n++;
        }

        return string.Join('/', x.Take(n));
    }

    private HashSet<string> ReadControllers(string dir)
    {
        _fs.ReadFile(Path.Combine(dir, "cgroup.controllers"), out var text);
        return CgroupTree.Words(text);
    }

    private void Apply(string dir, string containerId, ResourceLimits limits)
    {
        void Write(string controller, string file, string value)
        {
            var path = Path.Combine(dir, file);
            var error = _fs.WriteFile(path, value);
            if (!error.IsOk)
            {
                throw CgroupErrors.WriteFailed(2, CgroupErrors.Describe(controller, limits), containerId, path, value, error, _parentDir);
            }
        }

        if (limits.MemoryBytes is long memory)
        {
            Write("memory", "memory.max", memory.ToString(CultureInfo.InvariantCulture));

            // Absent when swap accounting is off; then there is no swap limit to set.
            if (_fs.Exists(Path.Combine(dir, "memory.swap.max")))
            {
                Write("memory", "memory.swap.max", "0");
            }
        }

        if (limits.Cpus is double cpus)
        {
            Write("cpu", "cpu.max", string.Create(CultureInfo.InvariantCulture, $"{(long)Math.Round(cpus * CpuPeriodUs)} {CpuPeriodUs}"));
        }

        if (limits.Pids is long pids)
        {
            Write("pids", "pids.max", pids.ToString(CultureInfo.InvariantCulture));
        }

        if (limits.CpusetCpus is string cpuset)
        {
            // v2 cpusets inherit the parent's effective mems when cpuset.mems is empty: no copying needed.
            Write("cpuset", "cpuset.cpus", cpuset);
        }
    }

    // v2 has no devices files: the allowlist is a BPF program on the group, attached before init joins it.
    // Unprivileged, bpf(2) is refused; the container is then in a user namespace, where device nodes cannot be made
    // and mounts are nodev, so there is no device to reach and the filter is not needed.
    private void AttachDeviceFilter(string dir, string containerId)
    {
        var error = _fs.AttachDeviceFilter(dir, DeviceProgram.Value);
        if (error.IsOk || (CgroupErrors.IsPermission(error) && !Environment.IsPrivilegedProcess))
        {
            return;
        }

        throw new ResourceLimitException($"Container {containerId}: cannot restrict devices: attaching the cgroup device program to {dir} failed: {error.Text}. "
            + "The kernel needs CONFIG_CGROUP_BPF and the engine CAP_SYS_ADMIN (run as root).");
    }

    private static readonly Lazy<byte[]> DeviceProgram = new(() => Security.CgroupDeviceProgram.Build(Security.DeviceRules.DockerDefault));

    private static string Caps(List<string> controllers, ResourceLimits limits) =>
        controllers.Count == 0 ? "a cgroup" : string.Join(", ", controllers.Select(c => CgroupErrors.Describe(c, limits)));
}
