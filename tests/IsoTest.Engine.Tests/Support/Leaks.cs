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

    /// <summary>The shims of <paramref name="ownerPid"/>'s engine: init agents whose parent is its spawner (see <see cref="SpawnersOf"/>).</summary>
    public static IReadOnlyList<int> AgentProcessesOf(int ownerPid) => [.. SpawnersOf(ownerPid).SelectMany(ChildAgents)];

    /// <summary>The engine's spawners (<c>isotest-init spawn-server</c>) among <paramref name="ownerPid"/>'s children.</summary>
    public static IReadOnlyList<int> SpawnersOf(int ownerPid) =>
        [.. ChildAgents(ownerPid).Where(pid => File.ReadAllText($"/proc/{pid}/cmdline").Split('\0') is [_, "spawn-server", ..])];

    /// <summary>Processes named isotest-init whose parent is <paramref name="parentPid"/>.</summary>
    private static IReadOnlyList<int> ChildAgents(int parentPid)
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
                var comm = stat[(stat.IndexOf('(') + 1)..stat.LastIndexOf(')')];
                if (comm == "isotest-init" && int.Parse(fields[1]) == parentPid)
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
