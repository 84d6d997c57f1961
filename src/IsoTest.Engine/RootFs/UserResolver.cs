using System.Globalization;

namespace IsoTest.Engine.RootFs;

/// <summary>The payload's credentials inside the container.</summary>
internal sealed record ResolvedUser(long Uid, long Gid, string Home);

/// <summary>User-namespace maps for rootless containers, in /proc/pid/uid_map syntax.</summary>
internal sealed record IdMaps(string UidMap, string GidMap)
{
    /// <summary>
    /// Rootless: the caller is mapped to the container's user, so files the caller owns are that user's
    /// inside, and servers that refuse to run as root (PostgreSQL) run. One id each: mapping more needs
    /// newuidmap and /etc/subuid, which most CI users lack.
    /// </summary>
    public static IdMaps ForCaller(ResolvedUser user, uint hostUid, uint hostGid) =>
        new($"{user.Uid} {hostUid} 1", $"{user.Gid} {hostGid} 1");
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
