using System.Globalization;

namespace IsoTest.Engine.RootFs;

/// <summary>The payload's credentials inside the container.</summary>
internal sealed record ResolvedUser(long Uid, long Gid, string Home);

/// <summary>User-namespace maps for rootless containers, in /proc/pid/uid_map syntax.</summary>
/// <param name="UidMap">Container uids to outside ones: <c>inside outside count</c> lines.</param>
/// <param name="GidMap">Likewise for gids.</param>
/// <param name="Helpers">The ranges these maps use: newuidmap/newgidmap must write them (null: the caller's own ids only, written by the shim).</param>
internal sealed record IdMaps(string UidMap, string GidMap, SubordinateIds? Helpers = null)
{
    /// <summary>
    /// Rootless: with subordinate ranges, rootless Docker's maps (container 0 the caller, the rest the ranges; see
    /// <see cref="SubordinateIds.UidMap"/> for which container id is the caller). Without, the caller is mapped to the
    /// container's user, so files the caller owns are that user's inside, and servers that refuse to run as root
    /// (PostgreSQL) run; one id each.
    /// </summary>
    /// <param name="user">The container's user.</param>
    /// <param name="image">The root is an image, whose layers were unpacked with container 0 as the caller.</param>
    /// <param name="hostUid">The caller's uid.</param>
    /// <param name="hostGid">The caller's gid.</param>
    /// <param name="ranges">The caller's subordinate ranges, or null.</param>
    public static IdMaps ForContainer(ResolvedUser user, bool image, uint hostUid, uint hostGid, SubordinateIds? ranges) =>
        ranges is null
            ? new($"{user.Uid} {hostUid} 1", $"{user.Gid} {hostGid} 1")
            : new(ranges.UidMap(image ? 0 : user.Uid, hostUid), ranges.GidMap(image ? 0 : user.Gid, hostGid), ranges);

    /// <summary>
    /// Whether files owned by container ids <paramref name="uid"/>:<paramref name="gid"/> can exist in a rootless
    /// container with <see cref="ForContainer"/>'s maps: with ranges any id they cover, without only the container user's.
    /// </summary>
    public static bool Covers(ResolvedUser user, bool image, SubordinateIds? ranges, long uid, long gid) =>
        ranges is null
            ? uid == user.Uid && gid == user.Gid
            : ranges.MapsUid(uid, image ? 0 : user.Uid) && ranges.MapsGid(gid, image ? 0 : user.Gid);

    /// <summary>The same maps for a member of rootless networks, whose user namespace is a child of the network holder's (0 the caller, 1.. the ranges).</summary>
    public static IdMaps InHolder(ResolvedUser user, bool image, SubordinateIds? ranges) =>
        ranges is null
            ? new($"{user.Uid} 0 1", $"{user.Gid} 0 1")
            : new(ranges.HolderUidMap(image ? 0 : user.Uid), ranges.HolderGidMap(image ? 0 : user.Gid));

    /// <summary>The network holder's own namespace: 0 the caller, 1.. the ranges (written by newuidmap/newgidmap).</summary>
    public static IdMaps ForHolder(uint hostUid, uint hostGid, SubordinateIds ranges) =>
        new(ranges.UidMap(0, hostUid), ranges.GidMap(0, hostGid), ranges);
}

/// <summary>
/// Turns <c>uid[:gid]</c> or a user name into numbers, reading the container's own /etc/passwd and
/// /etc/group (the host's for the host root filesystem), as Docker does. They are read INSIDE the
/// resolved root (Native/RootedFile): a symlink in a directory root cannot make the engine read a host file.
/// </summary>
internal static class UserResolver
{
    public static ResolvedUser Resolve(string? user, ResolvedRoot root) => Resolve(user, root, walk: false);

    /// <param name="user">The spec's user, or null for root.</param>
    /// <param name="root">Where the databases are read; the topmost lower directory holding one wins, as in the overlay.</param>
    /// <param name="walk">Resolve paths with the component walk instead of openat2 (for tests of the fallback).</param>
    internal static ResolvedUser Resolve(string? user, ResolvedRoot root, bool walk)
    {
        var rootPath = root.LowerDirectories[0];
        if (string.IsNullOrEmpty(user))
        {
            return new ResolvedUser(0, 0, "/root");
        }

        var parts = user.Split(':', 2);
        var passwd = ReadDb(root, "etc/passwd", walk);
        long uid;
        long? gid = null;
        string home = "/";
        if (long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out uid))
        {
            var entry = passwd.FirstOrDefault(e => e.Length > 5 && e[2] == parts[0]);
            if (entry is not null)
            {
                gid = Id(entry, 3, "passwd", "gid");
                home = entry[5];
            }
        }
        else
        {
            var entry = passwd.FirstOrDefault(e => e.Length > 5 && e[0] == parts[0])
                ?? throw new UnknownUserException($"user '{parts[0]}' is not in {Path.Combine(rootPath, "etc/passwd")}: use a numeric uid[:gid] or a name defined in the container's /etc/passwd");
            uid = Id(entry, 2, "passwd", "uid");
            gid = Id(entry, 3, "passwd", "gid");
            home = entry[5];
        }

        if (parts.Length == 2)
        {
            if (long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var g))
            {
                gid = g;
            }
            else
            {
                var group = ReadDb(root, "etc/group", walk).FirstOrDefault(e => e.Length > 2 && e[0] == parts[1])
                    ?? throw new UnknownUserException($"group '{parts[1]}' is not in {Path.Combine(rootPath, "etc/group")}: use a numeric gid or a group defined in the container's /etc/group");
                gid = Id(group, 2, "group", "gid");
            }
        }

        return new ResolvedUser(uid, gid ?? uid, home);
    }

    /// <summary>
    /// A numeric field of the entry that names the user: a malformed one is the container's /etc file's fault,
    /// said as such (not a FormatException). Malformed lines for other names are never parsed, as in glibc.
    /// </summary>
    private static long Id(string[] entry, int field, string db, string what) =>
        long.TryParse(entry[field], NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : throw new UnknownUserException($"the /etc/{db} entry for '{entry[0]}' has {what} '{entry[field]}', which is not a number: fix the container's /etc/{db} or give a numeric uid[:gid]");

    private static List<string[]> ReadDb(ResolvedRoot root, string path, bool walk)
    {
        foreach (var lower in root.LowerDirectories)
        {
            if (Native.RootedFile.ReadAll(lower, path, walk) is { } bytes)
            {
                return [.. System.Text.Encoding.UTF8.GetString(bytes).Split('\n').Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split(':'))];
            }
        }

        return [];
    }
}

/// <summary>A user or group name that the container's databases do not define.</summary>
internal sealed class UnknownUserException(string message) : Exception(message);
