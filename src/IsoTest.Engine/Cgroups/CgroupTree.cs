using System.Globalization;

namespace IsoTest.Engine.Cgroups;

/// <summary>What both drivers do the same way: killing what is in a group, removing groups, reading counters.</summary>
internal static class CgroupTree
{
    /// <summary>SIGKILLs every process listed in <c>cgroup.procs</c> until none is left.</summary>
    public static void KillAll(ICgroupFileSystem fs, string dir)
    {
        // Without a freezer a process may fork between our read and its kill, so read again until empty.
        // Killed tasks cannot fork any more, so this converges.
        foreach (var delay in Backoff())
        {
            if (!KillListed(fs, dir))
            {
                return;
            }

            fs.Pause(delay);
        }
    }

    /// <summary>
    /// rmdir that waits for dying tasks. ENOENT is success: "already gone" is not an error. Gives up (IOException)
    /// only when the group stays busy for the whole <see cref="Backoff"/>; a group left then has no owner once this
    /// engine ends, and a later engine's sweep removes it when it is empty (<see cref="RemoveIfUnowned"/>).
    /// </summary>
    public static void Remove(ICgroupFileSystem fs, string dir)
    {
        var error = FsResult.Ok;
        foreach (var delay in Backoff())
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

            KillListed(fs, dir);
            fs.Pause(delay);
        }

        throw new IOException(
            $"Could not remove cgroup {dir}: {error.Text}."
            + (error.Outcome == FsOutcome.Busy ? " Processes or child groups are still in it: check cgroup.procs there, and that nothing else moved processes in." : ""));
    }

    /// <summary>
    /// The waits between tries while SIGKILLed tasks leave their group, which the kernel finishes asynchronously
    /// (rmdir says EBUSY until then): 2 ms doubling to 100 ms, 30 s in all. A process can take seconds to die
    /// under memory pressure or emulation (the v2 guest of .ci/v2vm); a fixed second was not enough there.
    /// </summary>
    internal static IEnumerable<TimeSpan> Backoff()
    {
        var total = 0;
        for (var ms = 2; total < 30_000; ms = Math.Min(ms * 2, 100))
        {
            total += ms;
            yield return TimeSpan.FromMilliseconds(ms);
        }
    }

    /// <summary>SIGKILLs the processes <c>cgroup.procs</c> lists now; true when there were any.</summary>
    private static bool KillListed(ICgroupFileSystem fs, string dir)
    {
        var any = false;
        foreach (var pid in Procs(fs, dir))
        {
            any = true;
            fs.Kill(pid); // ESRCH: already gone, which is what we want.
        }

        return any;
    }

    private static IEnumerable<int> Procs(ICgroupFileSystem fs, string dir)
    {
        if (!fs.ReadFile(Path.Combine(dir, "cgroup.procs"), out var procs).IsOk)
        {
            yield break;
        }

        foreach (var line in procs!.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0)
            {
                yield return pid;
            }
        }
    }

    /// <summary>True when a process is in <paramref name="dir"/> or any group below it.</summary>
    private static bool HasProcesses(ICgroupFileSystem fs, string dir) =>
        Procs(fs, dir).Any() || fs.ListDirectories(dir).Any(child => HasProcesses(fs, Path.Combine(dir, child)));

    /// <summary>
    /// Makes an engine group (mkdir, EEXIST is fine) and takes this engine's shared hold on it, which a sweep's
    /// exclusive try cannot get while the engine lives. A sweep may have found the group empty and unheld between
    /// our mkdir and our hold and removed it: the hold is then on a removed directory, so it is dropped and the
    /// group made again. Returns the hold (kept until the group is removed) and whether the group was made here.
    /// </summary>
    public static (FsResult Error, IDisposable? Hold, bool Made) CreateHeld(ICgroupFileSystem fs, string dir)
    {
        var made = false;
        var error = FsResult.Ok;
        foreach (var delay in Backoff())
        {
            error = fs.CreateDirectory(dir);
            if (!error.IsOk && error.Outcome != FsOutcome.Exists)
            {
                return (error, null, made);
            }

            made |= error.IsOk;
            error = fs.LockDirectory(dir, exclusive: false, out var hold);
            if (error.IsOk && fs.Exists(dir))
            {
                return (FsResult.Ok, hold, made);
            }

            hold?.Dispose();

            // Busy: a sweep holds it exclusively right now (it will remove it or let it go); NotFound: it just did.
            if (!error.IsOk && error.Outcome is not (FsOutcome.Busy or FsOutcome.NotFound))
            {
                return (error, null, made);
            }

            fs.Pause(delay);
        }

        return (error, null, made);
    }

    /// <summary>
    /// The sweep of an engine group whose engine left no state directory where this engine looks (another state
    /// root, or none: its rmdir at teardown failed while processes were still dying). It is removed only when no
    /// engine holds it (<see cref="CreateHeld"/>: the holder is alive) and no process is in it, under an exclusive
    /// hold of each directory, so a live engine neither loses its groups nor can make one in between.
    /// </summary>
    /// <param name="fs">The cgroupfs.</param>
    /// <param name="dirs">The engine group in each hierarchy (v1: one per controller; v2: one).</param>
    /// <returns>True when removed; false when held, not empty, or not removable now.</returns>
    public static bool RemoveIfUnowned(ICgroupFileSystem fs, IReadOnlyList<string> dirs)
    {
        var holds = new List<IDisposable>(dirs.Count);
        try
        {
            var present = new List<string>(dirs.Count);
            foreach (var dir in dirs)
            {
                var error = fs.LockDirectory(dir, exclusive: true, out var hold);
                if (error.Outcome == FsOutcome.NotFound)
                {
                    continue;
                }

                if (!error.IsOk)
                {
                    return false;
                }

                holds.Add(hold!);
                present.Add(dir);
            }

            if (present.Count == 0 || present.Any(dir => HasProcesses(fs, dir)))
            {
                return false;
            }

            foreach (var dir in present)
            {
                RemoveTree(fs, dir);
            }

            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A group that turned busy under us (a process moved in by hand), or not ours to remove: left alone.
            return false;
        }
        finally
        {
            foreach (var hold in holds)
            {
                hold.Dispose();
            }
        }
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
