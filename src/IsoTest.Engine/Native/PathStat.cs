using System.Text;
using static Tmds.Linux.LibC;

namespace IsoTest.Engine.Native;

/// <summary>What lstat(2) says of a path: the engine's state root is checked with it (owner and mode are not in .NET's API).</summary>
internal readonly record struct PathStatus(bool Exists, bool IsDirectory, bool IsSymlink, uint Uid, uint Mode, uint Gid)
{
    /// <summary>lstat(<paramref name="path"/>): the last component is not followed.</summary>
    public static unsafe PathStatus Of(string path)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, bytes);
        Tmds.Linux.stat st;
        fixed (byte* p = bytes)
        {
            if (lstat(p, &st) != 0)
            {
                return default;
            }
        }

        var type = st.st_mode & S_IFMT;
        return new PathStatus(true, type == S_IFDIR, type == S_IFLNK, st.st_uid, (uint)(st.st_mode & 0xFFF), st.st_gid);
    }

    /// <summary>
    /// The POSIX access ACL of <paramref name="path"/> (not followed) in the kernel's xattr form, or null when it has
    /// none (or the filesystem keeps none): what may grant writes its mode bits do not show.
    /// </summary>
    public static unsafe byte[]? AccessAcl(string path)
    {
        for (int tries = 0; tries < 4; tries++)
        {
            var size = Libc.lgetxattr(path, "system.posix_acl_access", null, 0);
            if (size < 0)
            {
                return null; // ENODATA: none; ENOTSUP: a filesystem without ACLs
            }

            var value = new byte[size];
            fixed (byte* p = value)
            {
                var got = Libc.lgetxattr(path, "system.posix_acl_access", p, (nuint)value.Length);
                if (got >= 0)
                {
                    return value[..(int)got];
                }
            }
        }

        return []; // it kept changing size: unreadable, which callers take as "may grant anything"
    }

    /// <summary>True when this process may search (enter) the directory <paramref name="path"/>: access(2) with X_OK.</summary>
    public static bool MaySearch(string path) => Libc.access(path, 1) == 0;

    /// <summary>The caller's effective uid.</summary>
    public static uint EffectiveUid => geteuid();
}
