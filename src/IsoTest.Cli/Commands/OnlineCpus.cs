using System.Globalization;

namespace IsoTest.Cli.Commands;

/// <summary>The CPUs the kernel has online, for <c>--cpuset-cpus</c>'s "not available" answer.</summary>
internal static class OnlineCpus
{
    /// <summary>The online CPUs, or null when that cannot be read (then nothing is checked).</summary>
    public static HashSet<int>? Read()
    {
        string text;
        try
        {
            text = File.ReadAllText("/sys/devices/system/cpu/online").Trim();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        var cpus = new HashSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var range = part.Split('-');
            var first = int.Parse(range[0], CultureInfo.InvariantCulture);
            var last = int.Parse(range[^1], CultureInfo.InvariantCulture);
            for (var cpu = first; cpu <= last; cpu++)
            {
                cpus.Add(cpu);
            }
        }

        return cpus;
    }

    /// <summary><c>0-1</c>, or <c>none</c>.</summary>
    public static string Format(HashSet<int> cpus) =>
        cpus.Count == 0 ? "none" : $"{cpus.Min()}-{cpus.Max()}";
}
