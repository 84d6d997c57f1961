using System.Collections.Concurrent;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.RootFs;

/// <summary>
/// Rootless host root: which entries of the mirror's split directories (<see cref="HostMountPlan"/>: <c>/var</c>,
/// <c>/var/lib</c>, ...) no id of a container may write anything in, so that the mirror binds each of them read-only
/// (<c>rotree</c> records, native/rootfs.c <c>mirror_dir</c>) instead of making an overlay of it.
/// <para>
/// Why: every overlay is a superblock made at each start and freed after the container with an expedited RCU grace
/// period, and that background work, 26 overlays per container on a host with dockerd's <c>/var/lib/docker</c> mount
/// (which splits <c>/var/lib</c>), is what kept rootless host-root starts at 1.35-1.74x root's back to back. Through
/// an overlay, writing into such a tree failed anyway: the user namespace grants no capability over owners it does
/// not map, and the overlay's upper dir only ever received what the mapped ids could write. A read-only bind shows
/// the same files, live, with no superblock; a write fails with EROFS instead of EACCES. One difference remains:
/// the top directory of an overlay took the container's writes (its upper dir is the container's), a bind's does
/// not, so a container can no longer add entries directly in <c>/var/lib/dpkg</c> itself (the entries of <c>/</c>,
/// <c>/etc</c> or <c>/opt</c>, are never bound read-only: they are not entries of a split directory).
/// </para>
/// <para>
/// Found once per process for each plan and set of ids, by walking each candidate tree: a host change inside one
/// after that (root making a file there the user may write) is read-only in this process's containers where an
/// overlay would have taken the write into the container's layer. Only root can make such a change, since the walk
/// proved the user could write nothing there.
/// </para>
/// </summary>
internal static class HostReadOnlyTrees
{
    /// <summary>The agent's limit of <c>rotree</c> records (native/isotest-init.h, MAXROTREES).</summary>
    public const int MaxTrees = 256;

    /// <summary>A tree with more entries is not walked to the end: it keeps its overlay (a big tree is rarely all root's, and the walk is paid once per process).</summary>
    public const int MaxEntriesPerTree = 20_000;

    /// <summary>Entries walked for one plan at most (~3 µs each here): past it, the remaining candidates keep their overlays.</summary>
    public const int MaxEntries = 100_000;

    private static readonly ConcurrentDictionary<string, IReadOnlyList<string>> s_found = new(StringComparer.Ordinal);

    private static readonly EnumerationOptions s_entries = new() { AttributesToSkip = 0, IgnoreInaccessible = false, RecurseSubdirectories = false };

    /// <summary>The read-only trees for <paramref name="holders"/> (the plan's directories) and <paramref name="writers"/>, walked once per process.</summary>
    public static IReadOnlyList<string> For(IReadOnlyList<string> holders, HostWriters writers) =>
        holders.Count == 0 ? [] : s_found.GetOrAdd(string.Join('\n', holders) + "\n" + writers.Key, _ => Find(holders, writers));

    /// <summary>
    /// Each directory entry of a holder that is not a holder itself and whose whole tree (not following symlinks)
    /// holds nothing <paramref name="writers"/> may write, in the holders' order and each holder's sorted entries,
    /// at most <see cref="MaxTrees"/>. <paramref name="maxEntriesPerTree"/>: <see cref="MaxEntriesPerTree"/> (tests pass less).
    /// </summary>
    internal static IReadOnlyList<string> Find(IReadOnlyList<string> holders, HostWriters writers, int maxEntriesPerTree = MaxEntriesPerTree)
    {
        var held = holders.ToHashSet(StringComparer.Ordinal);
        var found = new List<string>();
        var budget = MaxEntries;
        foreach (var holder in holders)
        {
            foreach (var entry in Entries(holder) ?? [])
            {
                if (found.Count == MaxTrees || budget <= 0)
                {
                    return found;
                }

                var status = PathStatus.Of(entry);
                if (held.Contains(entry) || !status.IsDirectory)
                {
                    continue;
                }

                var left = Math.Min(maxEntriesPerTree, budget);
                var start = left;
                if (NothingWritable(entry, status, writers, ref left))
                {
                    found.Add(entry);
                }

                budget -= start - left;
            }
        }

        return found;
    }

    /// <summary>True when nothing at or below <paramref name="path"/> may be written by <paramref name="writers"/>; false too when that cannot be shown within <paramref name="left"/> entries.</summary>
    private static bool NothingWritable(string path, PathStatus status, HostWriters writers, ref int left)
    {
        if (--left < 0 || writers.MayWrite(status) || (PathStatus.AccessAcl(path) is { } acl && writers.MayWrite(acl)))
        {
            return false;
        }

        if (!status.IsDirectory)
        {
            return true;
        }

        // A directory this user may not list: nothing in it is reachable through the overlay either (overlayfs looks
        // up a lower dir with the mounter's credentials, the user's), unless the user may still enter it and reach
        // entries by name, which the walk cannot see: not shown read-only then.
        var entries = Entries(path);
        if (entries is null)
        {
            return !PathStatus.MaySearch(path);
        }

        foreach (var entry in entries)
        {
            var child = PathStatus.Of(entry);
            if (child.IsSymlink || !child.Exists)
            {
                // a symlink's own mode grants nothing; what it points to is its own tree's, or the host's elsewhere
                if (--left < 0)
                {
                    return false;
                }

                continue;
            }

            if (!NothingWritable(entry, child, writers, ref left))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The full paths of a directory's entries, sorted; null when it cannot be listed.</summary>
    private static string[]? Entries(string dir)
    {
        try
        {
            var entries = Directory.GetFileSystemEntries(dir, "*", s_entries);
            Array.Sort(entries, StringComparer.Ordinal);
            return entries;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return null;
        }
    }
}

/// <summary>
/// The host ids a rootless container's processes may act as: the caller's uid and gid (the container's root), the
/// caller's subordinate ranges when it has them (the container's other ids), and the caller's supplementary groups
/// (kept in a container without ranges: <c>setgroups</c> is denied there, not dropped).
/// </summary>
internal sealed record HostWriters(uint Uid, uint Gid, IReadOnlySet<uint> Groups, SubordinateIds? Ranges)
{
    /// <summary>This process's ids, with <paramref name="ranges"/>.</summary>
    public static HostWriters ForCaller(SubordinateIds? ranges) =>
        new(Credentials.EffectiveUid, Credentials.EffectiveGid, Credentials.Groups(), ranges);

    /// <summary>Tells one set of ids from another (the cache of <see cref="HostReadOnlyTrees.For"/>).</summary>
    public string Key =>
        $"{Uid}:{Gid}:{string.Join(',', Groups.Order())}:{Ranges?.UidStart}+{Ranges?.UidCount}:{Ranges?.GidStart}+{Ranges?.GidCount}";

    /// <summary>
    /// True when a container's process could write the entry (or, for a directory, make and remove entries in it) by
    /// its mode and owners: an owner the container maps (it is that id's, and the container's root has capabilities
    /// over what its namespace maps), a group it maps or the caller is in with group write, or write for others.
    /// </summary>
    public bool MayWrite(PathStatus status) =>
        UidMapped(status.Uid)
        || ((status.Mode & (uint)UnixFileMode.GroupWrite) != 0 && (GidMapped(status.Gid) || Groups.Contains(status.Gid)))
        || (status.Mode & (uint)UnixFileMode.OtherWrite) != 0;

    /// <summary>
    /// True when a POSIX access ACL (the kernel's xattr form: a 4-byte version 2, then 8-byte entries of tag, perm and
    /// id) grants a container's process write: a named user it maps, or a named group it maps or the caller is in,
    /// within the mask; or others. The owner's and the owning group's entries are the mode's, judged by
    /// <see cref="MayWrite(PathStatus)"/> (with an ACL the mode's group bits are the mask: more, never less). One it
    /// cannot read is taken as granting write.
    /// </summary>
    public bool MayWrite(ReadOnlySpan<byte> acl)
    {
        const ushort userObj = 0x01, user = 0x02, groupObj = 0x04, group = 0x08, mask = 0x10, other = 0x20, write = 2;
        if (acl.Length < 4 || (acl.Length - 4) % 8 != 0 || BitConverter.ToUInt32(acl) != 2)
        {
            return true;
        }

        bool masked = false, maskWrites = true, granted = false;
        for (var entry = acl[4..]; entry.Length > 0; entry = entry[8..])
        {
            var (tag, writes, id) = (BitConverter.ToUInt16(entry), (BitConverter.ToUInt16(entry[2..]) & write) != 0, BitConverter.ToUInt32(entry[4..]));
            switch (tag)
            {
                case mask:
                    (masked, maskWrites) = (true, writes);
                    break;
                case user:
                    granted |= writes && UidMapped(id);
                    break;
                case group:
                    granted |= writes && (GidMapped(id) || Groups.Contains(id));
                    break;
                case other when writes:
                    return true;
                case userObj or groupObj or other:
                    break;
                default:
                    return true;
            }
        }

        return granted && (!masked || maskWrites);
    }

    private bool UidMapped(uint uid) => uid == Uid || (Ranges is { } r && uid >= r.UidStart && uid - r.UidStart < r.UidCount);

    private bool GidMapped(uint gid) => gid == Gid || (Ranges is { } r && gid >= r.GidStart && gid - r.GidStart < r.GidCount);
}
