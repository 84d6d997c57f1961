namespace IsoTest.Engine.Tests.Support;

public static class Leaks
{
    /// <summary>Every cgroup directory of this engine's containers, in every hierarchy.</summary>
    public static IReadOnlyList<string> ContainerCgroups(string engineId)
    {
        var parent = Environment.GetEnvironmentVariable("ISOTEST_CGROUP_PARENT") is { Length: > 0 } p ? p : "isotest";
        var roots = Directory.Exists("/sys/fs/cgroup/memory")
            ? Directory.EnumerateDirectories("/sys/fs/cgroup").Select(c => Path.Combine(c, parent, engineId))
            : [Path.Combine("/sys/fs/cgroup", parent, engineId)];
        return roots.Where(Directory.Exists).SelectMany(r => Directory.EnumerateDirectories(r)).ToList();
    }

    /// <summary>
    /// Where an engine's group is in each hierarchy the engine uses for caps (v1: memory and pids, when the parent
    /// exists or can be made there; v2: the unified one): for tests that make an engine group by hand.
    /// </summary>
    public static IReadOnlyList<string> EngineGroupDirs(string engineId)
    {
        var parent = Environment.GetEnvironmentVariable("ISOTEST_CGROUP_PARENT") is { Length: > 0 } p ? p.Trim('/') : "isotest";
        return Directory.Exists("/sys/fs/cgroup/memory")
            ? [Path.Combine("/sys/fs/cgroup/memory", parent, engineId), Path.Combine("/sys/fs/cgroup/pids", parent, engineId)]
            : [Path.Combine("/sys/fs/cgroup", parent, engineId)];
    }

    public static Task AssertNoContainerCgroupsAsync(EngineBackend engine)
    {
        Assert.Empty(ContainerCgroups(engine.EngineId));
        return Task.CompletedTask;
    }

    /// <summary>
    /// The agents of <paramref name="ownerPid"/>'s engine named <paramref name="comm"/> (<c>isotest-mirror</c> for a host
    /// mirror maker, RootFs/HostMirrors.cs): children of its spawner (see <see cref="SpawnersOf"/>).
    /// </summary>
    public static IReadOnlyList<int> AgentProcessesOf(int ownerPid, string comm = "isotest-init") =>
        [.. SpawnersOf(ownerPid).SelectMany(spawner => ChildProcesses(spawner, comm))];

    /// <summary>The engine's spawners (<c>isotest-init spawn-server</c>) among <paramref name="ownerPid"/>'s children.</summary>
    public static IReadOnlyList<int> SpawnersOf(int ownerPid) =>
        [.. ChildProcesses(ownerPid, "isotest-init").Where(pid => File.ReadAllText($"/proc/{pid}/cmdline").Split('\0') is [_, "spawn-server", ..])];

    /// <summary>Processes named <paramref name="comm"/> whose parent is <paramref name="parentPid"/>.</summary>
    private static IReadOnlyList<int> ChildProcesses(int parentPid, string comm)
    {
        var result = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                var name = stat[(stat.IndexOf('(') + 1)..stat.LastIndexOf(')')];
                if (name == comm && int.Parse(fields[1]) == parentPid)
                {
                    result.Add(pid);
                }
            }
            catch (IOException)
            {
            }
        }

        return result;
    }

    /// <summary>
    /// Waits (at most 10 s) until none of <paramref name="pids"/> is alive: an agent's exit shows as EOF on its control
    /// socket, and the spawner, its parent, reaps it moments later. True when all are gone.
    /// </summary>
    public static async Task<bool> AllGoneAsync(IEnumerable<int> pids)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (pids.Any(IsAlive) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        return !pids.Any(IsAlive);
    }

    public static bool IsAlive(int pid)
    {
        try
        {
            return !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ");
        }
        catch (IOException)
        {
            return false; // gone (reaped) between two looks
        }
    }
}
