using System.Globalization;
using System.Text;

namespace IsoTest.Bench;

/// <summary>
/// The host's memory as /proc/meminfo and /proc/slabinfo (root only) give it, read before and while many containers
/// live, so the scale run can say where each container's drop in MemAvailable went: slab caches (namespaces, mounts,
/// cgroups, inodes), kernel stacks, page tables, tmpfs pages, the processes' own pages.
/// </summary>
internal sealed class KernelMemory
{
    /// <summary>The /proc/meminfo fields a container's footprint shows in (KiB).</summary>
    private static readonly string[] Fields = ["MemAvailable", "AnonPages", "Shmem", "Slab", "SUnreclaim", "KernelStack", "PageTables", "Percpu", "VmallocUsed"];

    private readonly Dictionary<string, long> _meminfo;
    private readonly Dictionary<string, (long Objects, long Bytes)> _slabs;

    private KernelMemory(Dictionary<string, long> meminfo, Dictionary<string, (long Objects, long Bytes)> slabs) =>
        (_meminfo, _slabs) = (meminfo, slabs);

    public static KernelMemory Read()
    {
        var meminfo = new Dictionary<string, long>();
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            var f = line.Split([':', ' '], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 2 && long.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var kib))
            {
                meminfo[f[0]] = kib;
            }
        }

        var slabs = new Dictionary<string, (long, long)>();
        try
        {
            // name active_objs num_objs objsize objperslab pagesperslab : tunables ... : slabdata active_slabs num_slabs sharedavail
            foreach (var line in File.ReadLines("/proc/slabinfo").Skip(2))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                long N(int i) => long.Parse(f[i], NumberStyles.None, CultureInfo.InvariantCulture);
                slabs[f[0]] = (N(1), N(14) * N(5) * Environment.SystemPageSize);
            }
        }
        catch (UnauthorizedAccessException)
        {
            // not root: the meminfo fields alone
        }

        return new KernelMemory(meminfo, slabs);
    }

    /// <summary>What grew from <paramref name="before"/> to this reading.</summary>
    public Diff Since(KernelMemory before)
    {
        var meminfo = Fields.Where(_meminfo.ContainsKey).ToDictionary(f => f, f => _meminfo[f] - before._meminfo.GetValueOrDefault(f));
        var slabs = _slabs.Select(s => (Name: s.Key, Objects: s.Value.Objects - before._slabs.GetValueOrDefault(s.Key).Objects, Bytes: s.Value.Bytes - before._slabs.GetValueOrDefault(s.Key).Bytes))
            .Where(s => s.Bytes > 0).OrderByDescending(s => s.Bytes).ToList();
        return new Diff(meminfo, slabs);
    }

    /// <summary>Growth between two readings: meminfo fields in KiB, slab caches by the bytes their slabs grew.</summary>
    public sealed record Diff(IReadOnlyDictionary<string, long> MemInfoKiB, IReadOnlyList<(string Name, long Objects, long Bytes)> Slabs)
    {
        public double MemAvailableDropKiB => -MemInfoKiB.GetValueOrDefault("MemAvailable");

        /// <summary>"Slab 1,020 KiB (SUnreclaim 900), KernelStack 48 KiB, ...; largest caches: kmalloc-1k 650 objects 660 KiB, ...", per container.</summary>
        public string Describe(int count)
        {
            var s = new StringBuilder();
            s.AppendJoin(", ", MemInfoKiB.Where(f => f.Key != "MemAvailable").Select(f => $"{f.Key} {Stats.Num((double)f.Value / count)} KiB"));
            if (Slabs.Count > 0)
            {
                s.Append("; largest slab caches: ");
                s.AppendJoin(", ", Slabs.Take(10).Select(c => $"{c.Name} {Stats.Num((double)c.Objects / count)} objects {Stats.Num(c.Bytes / 1024.0 / count)} KiB"));
            }

            return s.ToString();
        }
    }
}
