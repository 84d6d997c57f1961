using System.Globalization;

namespace IsoTest.Engine.Containers;

/// <summary>
/// CPU time of a live container read from /proc: every process under its init, plus what each has reaped.
/// Used where the cgroup cannot tell (v1 with cpuacct as a separate hierarchy: a cpuacct group per
/// container would cost ~0.7 ms of every start, this costs nothing until stats are asked for).
/// </summary>
internal static class ProcessTreeCpu
{
    // /proc reports times in USER_HZ, which the kernel ABI fixes at 100 on every architecture Linux supports.
    private const long TicksPerSecond = 100;

    public static TimeSpan? Read(int initPid)
    {
        if (initPid <= 0)
        {
            return null;
        }

        long ticks = 0;
        foreach (var (_, fields) in Walk(initPid))
        {
            // utime, stime, cutime, cstime: fields 14–17 of /proc/pid/stat, 11–14 after the ") " split.
            for (int i = 11; i <= 14; i++)
            {
                ticks += long.Parse(fields[i], CultureInfo.InvariantCulture);
            }
        }

        return TimeSpan.FromSeconds((double)ticks / TicksPerSecond);
    }

    /// <summary>
    /// One process of a container, as <c>docker top</c> lists it: host pid, parent, owner (host view), user CPU
    /// plus system CPU, start (seconds after boot) and command line.
    /// </summary>
    internal sealed record Entry(int Pid, int ParentPid, long Uid, TimeSpan CpuTime, double StartedAfterBoot, string Command);

    /// <summary>Every process under init (init itself not listed: it is IsoTest's, not the container's).</summary>
    public static IReadOnlyList<Entry> List(int initPid)
    {
        var list = new List<Entry>();
        foreach (var (pid, fields) in Walk(initPid))
        {
            if (pid == initPid)
            {
                continue;
            }

            string command;
            long uid = -1;
            try
            {
                command = File.ReadAllText($"/proc/{pid}/cmdline").TrimEnd('\0').Replace('\0', ' ');
                var status = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
                uid = status is null ? -1 : long.Parse(status.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                continue; // exited while we walked
            }

            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            list.Add(new Entry(pid, int.Parse(fields[1], CultureInfo.InvariantCulture), uid, TimeSpan.FromSeconds((double)ticks / TicksPerSecond),
                double.Parse(fields[19], CultureInfo.InvariantCulture) / TicksPerSecond, command.Length > 0 ? command : $"[{Comm(pid)}]"));
        }

        return list;
    }

    private static string Comm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n');
        }
        catch (IOException)
        {
            return "?";
        }
    }

    /// <summary>The processes of the tree under <paramref name="initPid"/> (init first) with their /proc stat fields after the command name.</summary>
    private static IEnumerable<(int Pid, string[] Fields)> Walk(int initPid)
    {
        var pending = new Stack<int>();
        pending.Push(initPid);
        while (pending.TryPop(out var pid))
        {
            var fields = StatFields(pid);
            if (fields is null)
            {
                continue; // exited while we walked
            }

            yield return (pid, fields);
            foreach (var child in Children(pid))
            {
                pending.Push(child);
            }
        }
    }

    private static string[]? StatFields(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static IEnumerable<int> Children(int pid)
    {
        string[] tasks;
        try
        {
            tasks = Directory.GetDirectories($"/proc/{pid}/task");
        }
        catch (IOException)
        {
            yield break;
        }

        foreach (var task in tasks)
        {
            string text;
            try
            {
                text = File.ReadAllText(Path.Combine(task, "children"));
            }
            catch (IOException)
            {
                continue;
            }

            foreach (var child in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                yield return int.Parse(child, CultureInfo.InvariantCulture);
            }
        }
    }
}
