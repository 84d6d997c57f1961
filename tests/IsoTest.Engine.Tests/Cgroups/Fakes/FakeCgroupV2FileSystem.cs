using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Native;
using static Tmds.Linux.LibC;

namespace IsoTest.Engine.Tests.Cgroups.Fakes;

/// <summary>
/// A cgroup v2 tree in a temp directory that behaves like the kernel where the driver can tell: mkdir fills a
/// group with the interface files of the controllers its parent enables, files cannot be created by writing,
/// subtree_control only accepts controllers listed in cgroup.controllers, rmdir refuses groups with processes
/// or children, cgroup.kill empties a subtree. Every write and kill is recorded. The machine here runs v1,
/// so this is how the v2 driver is tested (DESIGN.md "cgroups").
/// </summary>
internal sealed class FakeCgroupV2FileSystem : ICgroupFileSystem, IDisposable
{
    private readonly bool _withKillFile;
    private readonly bool _withSwap;

    public FakeCgroupV2FileSystem(string rootControllers = "cpuset cpu io memory pids", string rootSubtree = "cpu io memory pids", bool withKillFile = true, bool withSwap = true)
    {
        Root = Path.Combine(Path.GetTempPath(), "isotest-fakecg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
        _withKillFile = withKillFile;
        _withSwap = withSwap;
        File.WriteAllText(Path.Combine(Root, "cgroup.controllers"), rootControllers + "\n");
        File.WriteAllText(Path.Combine(Root, "cgroup.subtree_control"), rootSubtree + "\n");
        File.WriteAllText(Path.Combine(Root, "cgroup.procs"), "");
    }

    /// <summary>The fake cgroupfs mount point.</summary>
    public string Root { get; }

    /// <summary>Every successful and failed write, in order: (path relative to the root, value).</summary>
    public List<(string Path, string Value)> Writes { get; } = [];

    /// <summary>Device programs attached: (group relative to the root, program).</summary>
    public List<(string Dir, byte[] Program)> DeviceFilters { get; } = [];

    /// <summary>When set, attaching a device program fails with this errno (EPERM: an unprivileged engine).</summary>
    public int? DeviceFilterErrno { get; set; }

    /// <summary>Pids sent SIGKILL.</summary>
    public List<int> Killed { get; } = [];

    /// <summary>Directories (relative) in which mkdir fails with EACCES, as for an unprivileged user.</summary>
    public HashSet<string> Unwritable { get; } = [];

    /// <summary>File names whose writes fail with the given errno, e.g. memory.max → EINVAL.</summary>
    public Dictionary<string, int> FailingWrites { get; } = [];

    /// <summary>
    /// Writes to a path (relative) that fail with an errno a number of times, then behave: e.g. EPERM on a
    /// subtree_control while a setuid process sits in the subtree for a moment.
    /// </summary>
    public Dictionary<string, (int Errno, int Times)> FailingWritesFor { get; } = [];

    /// <summary>Controllers the "parent of the parent" refuses to enable (not delegated).</summary>
    public HashSet<string> Undelegatable { get; } = [];

    public string Full(string relative) => Path.Combine(Root, relative);

    public string Relative(string path) => Path.GetRelativePath(Root, path);

    /// <summary>Puts fake processes into a group.</summary>
    public void AddProcesses(string relativeDir, params int[] pids) =>
        File.AppendAllText(Full(Path.Combine(relativeDir, "cgroup.procs")), string.Concat(pids.Select(p => p + "\n")));

    public FsResult CreateDirectory(string path)
    {
        var parent = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(parent))
        {
            return CgroupFileSystem.Result(ENOENT);
        }

        if (Directory.Exists(path))
        {
            return CgroupFileSystem.Result(EEXIST);
        }

        if (Unwritable.Contains(Relative(parent)))
        {
            return CgroupFileSystem.Result(EACCES);
        }

        Directory.CreateDirectory(path);
        var enabled = File.ReadAllText(Path.Combine(parent, "cgroup.subtree_control")).Trim();
        File.WriteAllText(Path.Combine(path, "cgroup.controllers"), enabled + "\n");
        File.WriteAllText(Path.Combine(path, "cgroup.subtree_control"), "");
        File.WriteAllText(Path.Combine(path, "cgroup.procs"), "");
        File.WriteAllText(Path.Combine(path, "cgroup.events"), "populated 0\nfrozen 0\n");
        File.WriteAllText(Path.Combine(path, "cpu.stat"), "usage_usec 0\nuser_usec 0\nsystem_usec 0\n");
        if (_withKillFile)
        {
            File.WriteAllText(Path.Combine(path, "cgroup.kill"), "");
        }

        foreach (var controller in CgroupTreeWords(enabled))
        {
            var files = controller switch
            {
                "memory" => _withSwap
                    ? new[] { ("memory.max", "max\n"), ("memory.peak", "0\n"), ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"), ("memory.swap.max", "max\n") }
                    : [("memory.max", "max\n"), ("memory.peak", "0\n"), ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")],
                "cpu" => [("cpu.max", "max 100000\n"), ("cpu.weight", "100\n")],
                "pids" => [("pids.max", "max\n"), ("pids.current", "0\n")],
                "cpuset" => [("cpuset.cpus", "\n"), ("cpuset.mems", "\n")],
                _ => Array.Empty<(string, string)>(),
            };
            foreach (var (name, content) in files)
            {
                File.WriteAllText(Path.Combine(path, name), content);
            }
        }

        return CgroupFileSystem.Result(0);
    }

    public FsResult RemoveDirectory(string path)
    {
        if (!Directory.Exists(path))
        {
            return CgroupFileSystem.Result(ENOENT);
        }

        if (Directory.EnumerateDirectories(path).Any() || File.ReadAllText(Path.Combine(path, "cgroup.procs")).Trim().Length > 0)
        {
            return CgroupFileSystem.Result(EBUSY);
        }

        Directory.Delete(path, recursive: true);
        return CgroupFileSystem.Result(0);
    }

    public FsResult WriteFile(string path, string value)
    {
        Writes.Add((Relative(path), value));
        if (!File.Exists(path))
        {
            return CgroupFileSystem.Result(ENOENT);
        }

        var name = Path.GetFileName(path);
        if (FailingWrites.TryGetValue(name, out var errno))
        {
            return CgroupFileSystem.Result(errno);
        }

        if (FailingWritesFor.TryGetValue(Relative(path), out var failing) && failing.Times > 0)
        {
            FailingWritesFor[Relative(path)] = (failing.Errno, failing.Times - 1);
            return CgroupFileSystem.Result(failing.Errno);
        }

        var dir = Path.GetDirectoryName(path)!;
        switch (name)
        {
            case "cgroup.subtree_control":
                var available = CgroupTreeWords(File.ReadAllText(Path.Combine(dir, "cgroup.controllers")));
                var enabled = CgroupTreeWords(File.ReadAllText(path));
                foreach (var token in value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    var controller = token[1..];
                    if (!available.Contains(controller))
                    {
                        return CgroupFileSystem.Result(ENOENT); // What the kernel says for a controller the parent does not give.
                    }

                    if (dir == Root && Undelegatable.Contains(controller))
                    {
                        return CgroupFileSystem.Result(EACCES);
                    }

                    if (token[0] == '+')
                    {
                        enabled.Add(controller);
                    }
                    else
                    {
                        enabled.Remove(controller);
                    }
                }

                File.WriteAllText(path, string.Join(' ', enabled.Order()) + "\n");
                PropagateControllers(dir);
                return CgroupFileSystem.Result(0);
            case "cgroup.kill":
                foreach (var procs in Directory.EnumerateFiles(dir, "cgroup.procs", SearchOption.AllDirectories))
                {
                    File.WriteAllLines(procs, File.ReadAllLines(procs).Where(l => Unkillable.Contains(int.Parse(l, System.Globalization.CultureInfo.InvariantCulture))));
                }

                return CgroupFileSystem.Result(0);
            default:
                File.WriteAllText(path, value + "\n");
                return CgroupFileSystem.Result(0);
        }
    }

    public FsResult ReadFile(string path, out string? content)
    {
        if (!File.Exists(path))
        {
            content = null;
            return CgroupFileSystem.Result(ENOENT);
        }

        content = File.ReadAllText(path);
        return CgroupFileSystem.Result(0);
    }

    public bool Exists(string path) => File.Exists(path) || Directory.Exists(path);

    public IReadOnlyList<string> ListDirectories(string path) =>
        Directory.Exists(path) ? Directory.EnumerateDirectories(path).Select(p => Path.GetFileName(p)).ToList() : [];

    public FsResult AttachDeviceFilter(string dir, byte[] program)
    {
        // The kernel attaches to a cgroup directory's fd: the group must exist; without CAP_SYS_ADMIN it is EPERM.
        if (DeviceFilterErrno is int error)
        {
            return CgroupFileSystem.Result(error);
        }

        if (!File.Exists(Path.Combine(dir, "cgroup.procs")))
        {
            return CgroupFileSystem.Result(ENOENT);
        }

        DeviceFilters.Add((Path.GetRelativePath(Root, dir), program));
        return CgroupFileSystem.Result(0);
    }

    /// <summary>Pids that stay in their group whatever kills them (a task stuck in the kernel: D state).</summary>
    public HashSet<int> Unkillable { get; } = [];

    public FsResult Kill(int pid)
    {
        Killed.Add(pid);
        if (Unkillable.Contains(pid))
        {
            return CgroupFileSystem.Result(0);
        }

        var found = false;
        foreach (var procs in Directory.EnumerateFiles(Root, "cgroup.procs", SearchOption.AllDirectories))
        {
            var lines = File.ReadAllLines(procs).Where(l => l.Length > 0).ToList();
            if (lines.Remove(pid.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            {
                found = true;
                File.WriteAllLines(procs, lines);
            }
        }

        return CgroupFileSystem.Result(found ? 0 : ESRCH);
    }

    /// <summary>Runs right before each directory lock is tried (path, exclusive): a test's other engine acts in between.</summary>
    public Action<string, bool>? BeforeLock { get; set; }

    /// <summary>Pauses asked for, in order.</summary>
    public List<TimeSpan> Pauses { get; } = [];

    // The fake's directories are real ones, so flock(2) on them behaves as on cgroupfs: the real call.
    public FsResult LockDirectory(string path, bool exclusive, out IDisposable? held)
    {
        BeforeLock?.Invoke(path, exclusive);
        return CgroupFileSystem.Instance.LockDirectory(path, exclusive, out held);
    }

    public void Pause(TimeSpan delay) => Pauses.Add(delay);

    public void Dispose() => Directory.Delete(Root, recursive: true);

    private static HashSet<string> CgroupTreeWords(string text) =>
        new(text.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries), StringComparer.Ordinal);

    // The kernel shows a child's cgroup.controllers as its parent's subtree_control.
    private static void PropagateControllers(string dir)
    {
        var enabled = File.ReadAllText(Path.Combine(dir, "cgroup.subtree_control"));
        foreach (var child in Directory.EnumerateDirectories(dir))
        {
            File.WriteAllText(Path.Combine(child, "cgroup.controllers"), enabled);
        }
    }
}
