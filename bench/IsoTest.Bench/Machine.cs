namespace IsoTest.Bench;

/// <summary>What the figures were measured on, for the results header.</summary>
internal static class Machine
{
    public static string Describe()
    {
        var os = ReadOr("/etc/os-release", "").Split('\n').FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?[12..].Trim('"') ?? "Linux";
        var cpu = ReadOr("/proc/cpuinfo", "").Split('\n').FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        var memKb = ReadOr("/proc/meminfo", "").Split('\n').FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var mem = long.TryParse(memKb, out var kb) ? $"{kb / 1024.0 / 1024.0:0.0} GiB RAM" : "";
        return $"{Environment.ProcessorCount} CPUs (nproc; {cpu}), {mem}, kernel {ReadOr("/proc/sys/kernel/osrelease", "?").Trim()}, " +
               $"{CgroupVersion()}, {os}, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}";
    }

    /// <summary>cgroup v2 (unified), v1 with an empty v2 beside it (hybrid), or plain v1: from /proc/self/mounts.</summary>
    public static string CgroupVersion()
    {
        var mounts = ReadOr("/proc/self/mounts", "").Split('\n').Select(l => l.Split(' ')).Where(f => f.Length > 2).ToList();
        string? TypeAt(string path) => mounts.LastOrDefault(f => f[1] == path)?[2];
        return TypeAt("/sys/fs/cgroup") switch
        {
            "cgroup2" => "cgroup v2 (unified)",
            _ when TypeAt("/sys/fs/cgroup/unified") == "cgroup2" => "cgroup v1 (hybrid: v1 controllers, v2 at /sys/fs/cgroup/unified)",
            _ => "cgroup v1",
        };
    }

    private static string ReadOr(string path, string fallback)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return fallback;
        }
    }
}
