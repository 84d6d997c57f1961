using System.Globalization;

namespace IsoTest.TestSupport;

/// <summary>
/// A fixed amount of CPU work for cap and stats tests. A busy loop for a fixed wall time gets less CPU
/// when parallel tests load the machine, so its CPU figure cannot be bounded from below; a loop that
/// spins until its own CPU clock reaches a figure always does the same work, and its wall time, timed
/// inside the container, can only grow with load.
/// </summary>
internal static class CpuSpin
{
    /// <summary>
    /// A POSIX shell script (dash, busybox ash) that spins until its own user CPU time (field 14 of
    /// /proc/self/stat, in clock ticks of 1/100 s on Linux) reaches <paramref name="ticks"/>, then prints
    /// one line "spin START END" with /proc/uptime's seconds before and after.
    /// </summary>
    public static string Script(int ticks) =>
        "read start _ </proc/uptime; t=0; " +
        $"while [ $t -lt {ticks} ]; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; " +
        "set -- $(cat /proc/$$/stat); t=${14}; done; " +
        "read end _ </proc/uptime; echo spin $start $end";

    /// <summary>The wall time of the spin, from the line <see cref="Script"/> printed.</summary>
    public static double WallSeconds(string stdout)
    {
        var line = stdout.Split('\n').Single(l => l.StartsWith("spin ", StringComparison.Ordinal));
        var fields = line.Split(' ');
        return double.Parse(fields[2], CultureInfo.InvariantCulture) - double.Parse(fields[1], CultureInfo.InvariantCulture);
    }
}
