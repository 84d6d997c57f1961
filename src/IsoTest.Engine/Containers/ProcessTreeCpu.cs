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
        var pending = new Stack<int>();
        pending.Push(initPid);
        while (pending.TryPop(out var pid))
        {
            var fields = StatFields(pid);
            if (fields is null)
            {
                continue; // exited while we walked
            }

            // utime, stime, cutime, cstime: fields 14–17 of /proc/pid/stat, 11–14 after the ") " split.
            for (int i = 11; i <= 14; i++)
            {
                ticks += long.Parse(fields[i], CultureInfo.InvariantCulture);
            }

            foreach (var child in Children(pid))
            {
                pending.Push(child);
            }
        }

        return TimeSpan.FromSeconds((double)ticks / TicksPerSecond);
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
