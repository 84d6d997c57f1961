using System.Text;

namespace IsoTest.Engine.RootFs;

/// <summary>
/// Rootless, the host's root is a mirror (native/rootfs.c, <c>mirror_dir</c>): overlayfs in a user namespace refuses a
/// lower directory with mounts below it, so each such directory becomes a tmpfs holding one overlay per entry. Which
/// directories those are comes from the mount table, read once per engine here, and goes to every agent as
/// <c>submounts</c> records: the agent then mounts only what works instead of trying an overlay, being refused
/// (~1 ms for each refusal on this VM, against ~0.1 ms for an overlay that works) and falling back, at every start.
/// The plan is a hint: a directory it misses (a mount made later) is still tried and mirrored when refused.
/// </summary>
internal static class HostMountPlan
{
    /// <summary>The agent's limit of <c>submounts</c> records (native/isotest-init.h, MAXSUBMOUNTS).</summary>
    public const int MaxDirectories = 256;

    public const string MountInfoPath = "/proc/self/mountinfo";

    // The mirror makes its own /proc, /sys, /dev, /tmp and /run: mounts there never matter to it.
    private static readonly string[] s_ownTopLevel = ["/proc", "/sys", "/dev", "/tmp", "/run"];

    /// <summary>The plan for this process's mount namespace (the one agents are spawned from); empty when the table cannot be read.</summary>
    public static IReadOnlyList<string> ForThisProcess()
    {
        try
        {
            return FromMountInfo(File.ReadAllText(MountInfoPath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return []; // no plan: the agent tries every directory, as it did before plans
        }
    }

    /// <summary>
    /// The directories below <c>/</c> that hold a mount point beneath them (every proper ancestor of each mount point
    /// but <c>/</c>), sorted, at most <see cref="MaxDirectories"/> (the shallowest first: they are the ones every start meets).
    /// </summary>
    /// <param name="mountInfo">The text of a <c>/proc/PID/mountinfo</c>.</param>
    public static IReadOnlyList<string> FromMountInfo(string mountInfo)
    {
        var holders = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in mountInfo.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // id parent major:minor root MOUNT-POINT options ... (proc(5)); the mount point is field 5, octal-escaped.
            var fields = line.Split(' ');
            if (fields.Length < 5)
            {
                continue;
            }

            var mountPoint = Unescape(fields[4]);
            if (!mountPoint.StartsWith('/') || s_ownTopLevel.Any(t => mountPoint == t || mountPoint.StartsWith(t + "/", StringComparison.Ordinal)))
            {
                continue;
            }

            for (var dir = Path.GetDirectoryName(mountPoint); dir is not null && dir != "/"; dir = Path.GetDirectoryName(dir))
            {
                holders.Add(dir);
            }
        }

        return [.. holders.OrderBy(d => d.Count(c => c == '/')).ThenBy(d => d, StringComparer.Ordinal).Take(MaxDirectories)];
    }

    /// <summary>
    /// The mounts of this process's namespace, each as "ID MOUNT-POINT" (mountinfo's fields 1 and 5: a mount keeps its
    /// id while it lives); null when the table cannot be read.
    /// </summary>
    public static IReadOnlySet<string>? MountsOfThisProcess()
    {
        try
        {
            return Mounts(File.ReadAllText(MountInfoPath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The mounts of a <c>/proc/PID/mountinfo</c> text, each as "ID MOUNT-POINT".</summary>
    public static HashSet<string> Mounts(string mountInfo)
    {
        var mounts = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in mountInfo.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            if (fields.Length >= 5)
            {
                mounts.Add(fields[0] + " " + Unescape(fields[4]));
            }
        }

        return mounts;
    }

    /// <summary>The mount points of the mounts in one of two tables (<see cref="Mounts"/>) and not the other: made, or removed, in between.</summary>
    public static IEnumerable<string> ChangedPoints(IReadOnlySet<string> before, IReadOnlySet<string> after) =>
        before.Except(after).Concat(after.Except(before)).Select(m => m[(m.IndexOf(' ', StringComparison.Ordinal) + 1)..]).Distinct(StringComparer.Ordinal);

    /// <summary>mountinfo escapes space, tab, newline and backslash as <c>\ooo</c>.</summary>
    internal static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var bytes = new List<byte>(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                bytes.Add((byte)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(field.Substring(i, 1)));
            }
        }

        return Encoding.UTF8.GetString([.. bytes]);

        static bool IsOctal(char c) => c is >= '0' and <= '7';
    }
}
