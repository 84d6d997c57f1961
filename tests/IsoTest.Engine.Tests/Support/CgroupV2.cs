using System.Globalization;

namespace IsoTest.Engine.Tests.Support;

/// <summary>
/// A test that needs a real cgroup v2 kernel: skipped with a reason when /sys/fs/cgroup is not the unified
/// hierarchy (this machine runs v1; .ci/v2vm boots a v2 kernel and runs these tests there).
/// </summary>
public sealed class V2KernelFactAttribute : FactAttribute
{
    public V2KernelFactAttribute()
    {
        if (!CgroupV2.IsMounted)
        {
            Skip = "needs cgroup v2 at /sys/fs/cgroup (this host runs v1; .ci/v2vm runs these on a v2 kernel)";
        }
    }

    /// <summary>Also needs swap (to show that memory.swap.max, not the lack of swap, stops a capped container).</summary>
    public bool NeedsSwap
    {
        get => false;
        set
        {
            if (value && Skip is null && CgroupV2.SwapKiB() == 0)
            {
                Skip = "needs swap to prove memory.swap.max=0 (the v2 guest of .ci/v2vm has zram swap)";
            }
        }
    }

    /// <summary>Also needs at least this many CPUs.</summary>
    public int MinCpus
    {
        get => 1;
        set
        {
            if (Skip is null && Environment.ProcessorCount < value)
            {
                Skip = $"needs {value} CPUs, this machine has {Environment.ProcessorCount}";
            }
        }
    }
}

/// <summary>The real cgroup v2 tree as the tests look at it from the host side.</summary>
public static class CgroupV2
{
    public const string Root = "/sys/fs/cgroup";

    /// <summary>cgroup.controllers exists only at the root of a cgroup2 mount.</summary>
    public static bool IsMounted => File.Exists(Path.Combine(Root, "cgroup.controllers"));

    /// <summary>The engine's parent group (ISOTEST_CGROUP_PARENT, as the engine reads it), relative to the root.</summary>
    public static string Parent =>
        Environment.GetEnvironmentVariable("ISOTEST_CGROUP_PARENT")?.Trim().Trim('/') is { Length: > 0 } p ? p : "isotest";

    public static string ParentDir => Path.Combine(Root, Parent);

    /// <summary>Where the engine puts a container's group: &lt;parent&gt;/&lt;engine&gt;/&lt;container&gt;.</summary>
    public static string ContainerDir(EngineBackend engine, IContainer container) => Path.Combine(ParentDir, engine.EngineId, container.Id);

    public static string Read(string dir, string file) => File.ReadAllText(Path.Combine(dir, file)).Trim();

    /// <summary>The value of one "key value" line (memory.events, cpu.stat, pids.events).</summary>
    public static long Keyed(string dir, string file, string key) =>
        File.ReadAllLines(Path.Combine(dir, file))
            .Select(l => l.Split(' '))
            .Where(f => f.Length == 2 && f[0] == key)
            .Select(f => long.Parse(f[1], CultureInfo.InvariantCulture))
            .Single();

    public static IReadOnlyList<int> Procs(string dir) =>
        [.. File.ReadAllLines(Path.Combine(dir, "cgroup.procs")).Where(l => l.Length > 0).Select(l => int.Parse(l, CultureInfo.InvariantCulture))];

    /// <summary>The v2 line of /proc/PID/cgroup ("0::/path"), as a path below <see cref="Root"/>.</summary>
    public static string CgroupOf(int pid) =>
        Path.Join(Root, File.ReadAllLines($"/proc/{pid}/cgroup").Single(l => l.StartsWith("0::", StringComparison.Ordinal))[3..]);

    public static string Comm(int pid) => File.ReadAllText($"/proc/{pid}/comm").Trim();

    /// <summary>
    /// The commands of the processes in a group, sorted, once they are <paramref name="expected"/> or after a
    /// minute: a process that just exited (the payload's first command) may still be listed, or be gone between
    /// the listing and the read of its comm.
    /// </summary>
    public static async Task<IReadOnlyList<string>> CommsAsync(string dir, params string[] expected)
    {
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (true)
        {
            var comms = Procs(dir).Select(TryComm).OfType<string>().Order(StringComparer.Ordinal).ToList();
            if (comms.SequenceEqual(expected.Order(StringComparer.Ordinal)) || DateTime.UtcNow > deadline)
            {
                return comms;
            }

            await Task.Delay(50);
        }
    }

    private static string? TryComm(int pid)
    {
        try
        {
            return Comm(pid);
        }
        catch (IOException)
        {
            return null; // exited between the listing and the read
        }
    }

    public static int ParentOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
    }

    /// <summary>Moves a whole process (every thread) into a group: what writing cgroup.procs does.</summary>
    public static void Move(int pid, string dir) => File.WriteAllText(Path.Combine(dir, "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));

    public static long SwapKiB() =>
        File.ReadAllLines("/proc/meminfo").Where(l => l.StartsWith("SwapTotal:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture))
            .SingleOrDefault();

    /// <summary>
    /// A scratch group below the engine's parent (made if missing, with <paramref name="controllers"/> enabled
    /// for its children as the engine would), removed with its children by <see cref="Scratch.Dispose"/>.
    /// </summary>
    public static Scratch MakeScratch(string name, params string[] controllers)
    {
        Directory.CreateDirectory(ParentDir);
        if (controllers.Length > 0)
        {
            File.WriteAllText(Path.Combine(ParentDir, "cgroup.subtree_control"), string.Join(' ', controllers.Select(c => "+" + c)));
        }

        return new(Path.Combine(ParentDir, $"{name}-{Guid.NewGuid():N}"[..(name.Length + 9)]));
    }

    public sealed class Scratch : IDisposable
    {
        internal Scratch(string dir)
        {
            Dir = dir;
            Directory.CreateDirectory(dir);
        }

        public string Dir { get; }

        /// <summary>The scratch group's path relative to the cgroup root (what ISOTEST_CGROUP_PARENT takes).</summary>
        public string Relative => Path.GetRelativePath(Root, Dir);

        public string Child(string name)
        {
            var dir = Path.Combine(Dir, name);
            Directory.CreateDirectory(dir);
            return dir;
        }

        public void Dispose() => Remove(Dir);

        private static void Remove(string dir)
        {
            if (!Directory.Exists(dir))
            {
                return;
            }

            foreach (var child in Directory.EnumerateDirectories(dir))
            {
                Remove(child);
            }

            // Killed tasks leave their group asynchronously: rmdir says EBUSY until they have.
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    Directory.Delete(dir);
                    return;
                }
                catch (DirectoryNotFoundException)
                {
                    return; // gone is what we wanted, whoever removed it
                }
                catch (IOException) when (attempt < 500)
                {
                    Thread.Sleep(10);
                }
            }
        }
    }
}
