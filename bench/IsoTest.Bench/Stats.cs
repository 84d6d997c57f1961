using System.Globalization;

namespace IsoTest.Bench;

/// <summary>Median, p90 and range of a set of samples; how every figure in the results is shown.</summary>
internal sealed record Summary(double Median, double P90, double Min, double Max, int Count)
{
    public static Summary Of(IReadOnlyCollection<double> values) =>
        values.Count == 0
            ? throw new InvalidOperationException("no samples")
            : new(Stats.Percentile(values, 50), Stats.Percentile(values, 90), values.Min(), values.Max(), values.Count);
}

internal static class Stats
{
    /// <summary>Linear interpolation between the closest ranks (the median of an even count is the mean of the middle two).</summary>
    public static double Percentile(IEnumerable<double> values, double percent)
    {
        var sorted = values.Order().ToArray();
        var rank = percent / 100 * (sorted.Length - 1);
        var low = (int)Math.Floor(rank);
        var high = (int)Math.Ceiling(rank);
        return sorted[low] + ((sorted[high] - sorted[low]) * (rank - low));
    }

    /// <summary>
    /// The median of per-round ratios <c>peer[i] / baseline[i]</c>: both were measured in the same round, so
    /// load that came and went during the run cancels out of each ratio.
    /// </summary>
    public static double? PairedRatio(IReadOnlyList<double> peer, IReadOnlyList<double> baseline)
    {
        var n = Math.Min(peer.Count, baseline.Count);
        return n == 0 ? null : Percentile(Enumerable.Range(0, n).Select(i => peer[i] / baseline[i]), 50);
    }

    /// <summary>A number with about three significant digits.</summary>
    public static string Num(double value) =>
        value.ToString(Math.Abs(value) < 10 ? "0.00" : Math.Abs(value) < 100 ? "0.0" : "#,0", CultureInfo.InvariantCulture);

    /// <summary>"median | p90 | min – max" cells.</summary>
    public static string Cells(Summary s) => $"{Num(s.Median)} | {Num(s.P90)} | {Num(s.Min)} – {Num(s.Max)}";

    public static string Mark(bool met) => met ? "✓" : "✗";
}

/// <summary>The 1-, 5- and 15-minute load averages, read when a figure is taken (the machine is shared).</summary>
internal static class Load
{
    public static string Now()
    {
        try
        {
            var f = File.ReadAllText("/proc/loadavg").Split(' ');
            return $"{f[0]} {f[1]} {f[2]}";
        }
        catch (IOException)
        {
            return "?";
        }
    }

    public static double OneMinute() =>
        double.TryParse(Now().Split(' ')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var l) ? l : double.NaN;
}

/// <summary>
/// CPU steal: the share of CPU time the hypervisor gave to other guests while a benchmark ran (from
/// /proc/stat). On a shared VM it moves every figure; this CI machine has shown 0 % and 40 % within
/// the same hour, so each table says how much there was.
/// </summary>
internal static class Steal
{
    public static long[] Mark()
    {
        try
        {
            var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return cpu.Skip(1).Take(8).Select(long.Parse).ToArray(); // user nice system idle iowait irq softirq steal
        }
        catch (IOException)
        {
            return [];
        }
    }

    public static string Since(long[] before)
    {
        var now = Mark();
        if (before.Length < 8 || now.Length < 8)
        {
            return "?";
        }

        double total = now.Sum() - before.Sum();
        return total <= 0 ? "0 %" : $"{100 * (now[7] - before[7]) / total:0.#} %";
    }
}
