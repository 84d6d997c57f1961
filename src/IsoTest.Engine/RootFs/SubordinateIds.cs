using System.Globalization;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.RootFs;

/// <summary>
/// The caller's subordinate id ranges (<c>/etc/subuid</c>, <c>/etc/subgid</c>) and the setuid helpers that may
/// map them (<c>newuidmap</c>, <c>newgidmap</c> from Debian's <c>uidmap</c>). With them a rootless container maps
/// as rootless Docker's does: container 0 is the caller, 1..count the range, so an image's files keep distinct
/// owners and <c>setgroups</c> stays allowed (the caller's supplementary groups are dropped, as root does).
/// </summary>
internal sealed record SubordinateIds(uint UidStart, uint UidCount, uint GidStart, uint GidCount, string NewUidMap, string NewGidMap)
{
    public const string SubUidFile = "/etc/subuid";
    public const string SubGidFile = "/etc/subgid";

    private static readonly Lazy<SubordinateIdLookup> s_thisProcess = new(() => Find(SubUidFile, SubGidFile));
    private static readonly HashSet<string> s_said = [];

    /// <summary>This process's user's ranges (read once), or why there are none.</summary>
    public static SubordinateIdLookup ForThisProcess() => s_thisProcess.Value;

    /// <summary>Says what <paramref name="lookup"/> lacks, once per process and reason.</summary>
    public static void SayOnce(SubordinateIdLookup lookup, Action<string> log)
    {
        if (lookup.Missing is { } missing)
        {
            lock (s_said)
            {
                if (!s_said.Add(missing))
                {
                    return;
                }
            }

            log(missing);
        }
    }

    /// <summary>The ranges of this process's user in <paramref name="subUid"/> and <paramref name="subGid"/> (the user's name or uid in the first field), and the helpers on the usual paths.</summary>
    internal static SubordinateIdLookup Find(string subUid, string subGid)
    {
        var uid = Credentials.EffectiveUid;
        var user = Environment.UserName;
        var fix = $"as root, `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}` (and `apt-get install uidmap` for newuidmap/newgidmap)";
        var uids = Range(subUid, user, uid);
        var gids = Range(subGid, user, uid);
        if (uids is null || gids is null)
        {
            return new(null, $"rootless without subordinate ids: {(uids is null ? subUid : subGid)} has no range for user {user} (uid {uid}), so every file in a container is the caller's and the caller's supplementary groups stay in it; to map image owners as Docker does: {fix}");
        }

        var newUidMap = Helper("newuidmap");
        var newGidMap = Helper("newgidmap");
        if (newUidMap is null || newGidMap is null)
        {
            return new(null, $"rootless without subordinate ids: {subUid} has a range for user {user} but {(newUidMap is null ? "newuidmap" : "newgidmap")} is not installed, so every file in a container is the caller's and the caller's supplementary groups stay in it; to map image owners as Docker does: {fix}");
        }

        return new(new SubordinateIds(uids.Value.Start, uids.Value.Count, gids.Value.Start, gids.Value.Count, newUidMap, newGidMap), null);
    }

    /// <summary>
    /// The container's uid map, host ids outside. Container <paramref name="keep"/> is the caller (0 for images,
    /// whose layers were unpacked so; the container's user for the host's and directory roots, whose files are the
    /// caller's); every other id up to the range's count is the range's, the ids below and above <paramref name="keep"/> in order.
    /// </summary>
    public string UidMap(long keep, uint caller) => Map(keep, caller, UidStart, UidCount);

    /// <inheritdoc cref="UidMap"/>
    public string GidMap(long keep, uint caller) => Map(keep, caller, GidStart, GidCount);

    /// <summary>The same maps as ids of the network holder's user namespace (0 the caller, 1.. the range).</summary>
    public string HolderUidMap(long keep) => Map(keep, 0, 1, UidCount);

    /// <inheritdoc cref="HolderUidMap"/>
    public string HolderGidMap(long keep) => Map(keep, 0, 1, GidCount);

    /// <summary>What the owners of an image's layers were shifted for: layers unpacked for other ranges are other trees.</summary>
    public string Key => string.Create(CultureInfo.InvariantCulture, $"{UidStart}-{UidCount}-{GidStart}-{GidCount}");

    /// <summary>Whether the container uid <paramref name="id"/> exists under <see cref="UidMap"/>(<paramref name="keep"/>, ...).</summary>
    public bool MapsUid(long id, long keep) => Maps(id, keep, UidCount);

    /// <summary>Whether the container gid <paramref name="id"/> exists under <see cref="GidMap"/>(<paramref name="keep"/>, ...).</summary>
    public bool MapsGid(long id, long keep) => Maps(id, keep, GidCount);

    // The ids Map(keep, ...) covers: 0..count, except that a `keep` beyond the range takes the place of `count`.
    private static bool Maps(long id, long keep, uint count) => id == keep || (id >= 0 && (keep <= count ? id <= count : id < count));

    internal static string Map(long keep, uint caller, uint start, uint count)
    {
        var lines = new List<string> { $"{keep} {caller} 1" };
        if (keep == 0)
        {
            lines.Add($"1 {start} {count}");
        }
        else if (keep <= count)
        {
            // The caller is container `keep`: container 0 takes the range's slot for `keep`.
            lines.Add($"0 {start + keep - 1} 1");
            if (keep > 1)
            {
                lines.Add($"1 {start} {keep - 1}");
            }

            if (keep < count)
            {
                lines.Add($"{keep + 1} {start + keep} {count - keep}");
            }
        }
        else
        {
            lines.Add($"0 {start} {count}");
        }

        return string.Join('\n', lines);
    }

    private static (uint Start, uint Count)? Range(string file, string user, uint uid)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var id = uid.ToString(CultureInfo.InvariantCulture);
        foreach (var line in lines)
        {
            var f = line.Split(':');
            if (f.Length == 3 && (f[0] == user || f[0] == id)
                && uint.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var start)
                && uint.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count > 0)
            {
                return (start, count);
            }
        }

        return null;
    }

    private static string? Helper(string name) =>
        new[] { "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin" }.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}

/// <summary>The caller's ranges, or (null) the one line that says why there are none and how to add them.</summary>
internal sealed record SubordinateIdLookup(SubordinateIds? Ids, string? Missing);
