using System.Text;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.Tests.Images;

/// <summary>lstat and lgetxattr for assertions on unpacked trees (never following the last component).</summary>
internal static unsafe class FsProbe
{
    private const uint All = 0xfff;

    private static Libc.Statx Stat(string path)
    {
        Libc.Statx st;
        Assert.True(Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, All, &st) == 0, $"statx {path}: errno {Libc.Errno}");
        return st;
    }

    public static ulong Inode(string path) => Stat(path).Ino;

    public static uint Links(string path) => Stat(path).Nlink;

    public static (int Uid, int Gid) Owner(string path)
    {
        var st = Stat(path);
        return ((int)st.Uid, (int)st.Gid);
    }

    public static (int Major, int Minor) Device(string path)
    {
        var st = Stat(path);
        return ((int)st.RdevMajor, (int)st.RdevMinor);
    }

    public static char Type(string path) => (Stat(path).Mode & Libc.S_IFMT) switch
    {
        Libc.S_IFDIR => 'd',
        Libc.S_IFREG => 'f',
        Libc.S_IFLNK => 'l',
        Libc.S_IFCHR => 'c',
        Libc.S_IFBLK => 'b',
        Libc.S_IFIFO => 'p',
        _ => '?',
    };

    /// <summary>The xattr's bytes exactly, or null when the file has none of that name.</summary>
    public static byte[]? XattrBytes(string path, string name)
    {
        var buffer = new byte[4096];
        fixed (byte* b = buffer)
        {
            var n = Libc.lgetxattr(path, name, b, (nuint)buffer.Length);
            return n < 0 ? null : buffer[..(int)n];
        }
    }

    public static string? Xattr(string path, string name)
    {
        var buffer = new byte[4096];
        fixed (byte* b = buffer)
        {
            var n = Libc.lgetxattr(path, name, b, (nuint)buffer.Length);
            return n < 0 ? null : Encoding.UTF8.GetString(buffer, 0, (int)n);
        }
    }
}
