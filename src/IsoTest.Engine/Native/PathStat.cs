using System.Text;
using static Tmds.Linux.LibC;

namespace IsoTest.Engine.Native;

/// <summary>What lstat(2) says of a path: the engine's state root is checked with it (owner and mode are not in .NET's API).</summary>
internal readonly record struct PathStatus(bool Exists, bool IsDirectory, bool IsSymlink, uint Uid, uint Mode)
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
        return new PathStatus(true, type == S_IFDIR, type == S_IFLNK, st.st_uid, (uint)(st.st_mode & 0xFFF));
    }

    /// <summary>The caller's effective uid.</summary>
    public static uint EffectiveUid => geteuid();
}
