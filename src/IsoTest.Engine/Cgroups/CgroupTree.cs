using System.Globalization;

namespace IsoTest.Engine.Cgroups;

/// <summary>What both drivers do the same way: killing what is in a group, removing groups, reading counters.</summary>
internal static class CgroupTree
{
    // Dying tasks leave their cgroup asynchronously after SIGKILL; rmdir says EBUSY until they have.
    private const int RemoveAttempts = 500;
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(2);

    /// <summary>SIGKILLs every process listed in <c>cgroup.procs</c> until none is left.</summary>
    public static void KillAll(ICgroupFileSystem fs, string dir)
    {
        // Without a freezer a process may fork between our read and its kill, so read again until empty.
        // Killed tasks cannot fork any more, so this converges.
        for (var attempt = 0; attempt < RemoveAttempts; attempt++)
        {
            if (!fs.ReadFile(Path.Combine(dir, "cgroup.procs"), out var procs).IsOk)
            {
                return;
            }

            var any = false;
            foreach (var line in procs!.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0)
                {
                    any = true;
                    fs.Kill(pid); // ESRCH: already gone, which is what we want.
                }
            }

            if (!any)
            {
                return;
            }

            fs.Pause(RetryDelay);
        }
    }

    /// <summary>rmdir that waits for dying tasks. ENOENT is success: "already gone" is not an error.</summary>
    public static void Remove(ICgroupFileSystem fs, string dir)
    {
        var error = FsResult.Ok;
        for (var attempt = 0; attempt < RemoveAttempts; attempt++)
        {
            error = fs.RemoveDirectory(dir);
            if (error.IsOk || error.Outcome == FsOutcome.NotFound)
            {
                return;
            }

            if (error.Outcome != FsOutcome.Busy)
            {
                break;
            }

            KillAll(fs, dir);
            fs.Pause(RetryDelay);
        }

        throw new IOException(
            $"Could not remove cgroup {dir}: {error.Text}."
            + (error.Outcome == FsOutcome.Busy ? " Processes or child groups are still in it: check cgroup.procs there, and that nothing else moved processes in." : ""));
    }

    /// <summary>Kills and removes <paramref name="dir"/> and every group below it, children first.</summary>
    public static void RemoveTree(ICgroupFileSystem fs, string dir)
    {
        foreach (var child in fs.ListDirectories(dir))
        {
            RemoveTree(fs, Path.Combine(dir, child));
        }

        KillAll(fs, dir);
        Remove(fs, dir);
    }

    /// <summary>Best-effort removal used to undo a failed create; the original error is what matters.</summary>
    public static void TryRemove(ICgroupFileSystem fs, string dir)
    {
        try
        {
            Remove(fs, dir);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Reads a file holding one integer. Null when missing or not a number ("max").</summary>
    public static long? ReadLong(ICgroupFileSystem fs, string path) =>
        fs.ReadFile(path, out var text).IsOk
        && long.TryParse(text!.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : null;

    /// <summary>Reads "key value" lines (memory.oom_control, memory.events, cpu.stat) and returns the value of <paramref name="key"/>.</summary>
    public static long? ReadKeyed(ICgroupFileSystem fs, string path, string key)
    {
        if (!fs.ReadFile(path, out var text).IsOk)
        {
            return null;
        }

        foreach (var line in text!.Split('\n'))
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0
                && line.AsSpan(0, space).SequenceEqual(key)
                && long.TryParse(line.AsSpan(space + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                return value;
            }
        }

        return null;
    }

    /// <summary>Splits a space-separated controller list (cgroup.controllers, cgroup.subtree_control).</summary>
    public static HashSet<string> Words(string? text) =>
        new((text ?? "").Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries), StringComparer.Ordinal);
}
