using System.Diagnostics;
using System.Globalization;

namespace IsoTest.Docker;

/// <summary>
/// Who owns a container. Every container carries these labels so a later backend can remove what a
/// dead test process left behind, without a reaper container (Ryuk) that needs the daemon to run one.
/// </summary>
internal sealed record DockerOwner(int Pid, long StartTicks, string Host)
{
    internal const string MarkerLabel = "isotest";
    internal const string PidLabel = "isotest.owner.pid";
    internal const string StartLabel = "isotest.owner.start";
    internal const string HostLabel = "isotest.owner.host";

    /// <summary>This process.</summary>
    internal static DockerOwner Current { get; } = new(Environment.ProcessId, StartTicksOf(Environment.ProcessId) ?? 0, Environment.MachineName);

    internal void AddLabels(IDictionary<string, string> labels)
    {
        labels[MarkerLabel] = "1";
        labels[PidLabel] = Pid.ToString(CultureInfo.InvariantCulture);
        labels[StartLabel] = StartTicks.ToString(CultureInfo.InvariantCulture);
        labels[HostLabel] = Host;
    }

    /// <summary>Reads an owner from labels; null when they are missing or malformed (never swept: not provably ours).</summary>
    internal static DockerOwner? FromLabels(IDictionary<string, string>? labels)
    {
        if (labels is null
            || !labels.TryGetValue(PidLabel, out var pid) || !int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out var p)
            || !labels.TryGetValue(StartLabel, out var start) || !long.TryParse(start, NumberStyles.None, CultureInfo.InvariantCulture, out var s)
            || !labels.TryGetValue(HostLabel, out var host))
        {
            return null;
        }

        return new DockerOwner(p, s, host);
    }

    /// <summary>True when the owning process no longer runs: no such pid, or the pid was reused by a later process.</summary>
    internal bool IsGone()
    {
        var start = StartTicksOf(Pid);
        return start is null || start.Value != StartTicks;
    }

    /// <summary>
    /// A process's start time that is identical whenever it is read. On Linux that is field 22 of
    /// <c>/proc/pid/stat</c> (clock ticks since boot): <see cref="Process.StartTime"/> adds a boot time
    /// computed from the uptime, which can differ by a tick between two readers, and a mismatch here
    /// would remove a live process's containers.
    /// </summary>
    internal static long? StartTicksOf(int pid)
    {
        if (OperatingSystem.IsLinux())
        {
            string stat;
            try
            {
                stat = File.ReadAllText($"/proc/{pid}/stat");
            }
            catch (IOException)
            {
                return null;
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }

            // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // fields[0] is field 3 (state); starttime is field 22.
            return fields.Length > 19 && long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            // Whole seconds: stable across readers where the OS reports the start time with jitter.
            return process.StartTime.ToUniversalTime().Ticks / TimeSpan.TicksPerSecond;
        }
        catch (ArgumentException)
        {
            return null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
