using System.Text;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>
/// What one lstat of an object says, the owner as the maker of the call sees it: <c>Mode</c> is st_mode (the type
/// bits and the permission bits), <c>LinkTarget</c> a symlink's target as written (null for anything else).
/// </summary>
internal readonly record struct TreeStat(int Mode, long Size, int Uid, int Gid, long MtimeSeconds, long MtimeNanoseconds, int RdevMajor, int RdevMinor, string? LinkTarget);

/// <summary>
/// The system calls a <see cref="LayerTree"/> makes that the kernel checks against the credentials of whoever makes
/// them: made by this process (<see cref="HostTreeCalls"/>), or rootless by the filer in a running container's user
/// namespace (Process/ContainerFiler.cs), which may write where the container's root may. Each returns 0 or the errno,
/// and takes directory descriptors and one name: resolving a path is the tree's, through <see cref="OpenInRoot"/>,
/// the one call that takes a path and resolves it only inside the root (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).
/// Names are never followed when they are symlinks.
/// </summary>
internal interface ITreeCalls : IDisposable
{
    /// <summary>openat2 of <paramref name="path"/> under <paramref name="root"/>, resolved inside it; O_CLOEXEC is added.</summary>
    int OpenInRoot(SafeFileHandle root, string path, int flags, out SafeFileHandle? handle);

    /// <summary>openat of one name in <paramref name="dir"/>, O_NOFOLLOW | O_CLOEXEC | O_NOCTTY added.</summary>
    int OpenAt(SafeFileHandle dir, string name, int flags, int mode, out SafeFileHandle? handle);

    int MakeDirectory(SafeFileHandle dir, string name, int mode);

    int Symlink(SafeFileHandle dir, string name, string target);

    /// <summary>A hard link <paramref name="name"/> in <paramref name="dir"/> to <paramref name="targetName"/> in <paramref name="targetDir"/>.</summary>
    int Link(SafeFileHandle targetDir, string targetName, SafeFileHandle dir, string name);

    /// <summary>mknodat with the type bits in <paramref name="typeAndMode"/>.</summary>
    int MakeNode(SafeFileHandle dir, string name, int typeAndMode, ulong device);

    int Chown(SafeFileHandle dir, string name, int uid, int gid);

    /// <summary>chmod of the object <paramref name="node"/> (an O_PATH descriptor) itself.</summary>
    int Chmod(SafeFileHandle node, int mode);

    int SetXattr(SafeFileHandle dir, string name, string attribute, ReadOnlySpan<byte> value);

    int SetTimes(SafeFileHandle dir, string name, long seconds, long nanoseconds);

    /// <summary>unlinkat: <paramref name="flags"/> 0, or AT_REMOVEDIR for an empty directory.</summary>
    int Unlink(SafeFileHandle dir, string name, int flags);

    /// <summary>lstat of one name in <paramref name="dir"/>; "." is the directory itself.</summary>
    int Stat(SafeFileHandle dir, string name, out TreeStat stat);
}

/// <summary>The calls made by this process, with its own credentials: every tree the engine writes on the host.</summary>
internal sealed unsafe class HostTreeCalls : ITreeCalls
{
    public static readonly HostTreeCalls Instance = new();

    private HostTreeCalls()
    {
    }

    public int OpenInRoot(SafeFileHandle root, string path, int flags, out SafeFileHandle? handle)
    {
        var how = new Libc.OpenHow
        {
            Flags = (ulong)(flags | Libc.O_CLOEXEC),
            Resolve = Libc.RESOLVE_IN_ROOT | Libc.RESOLVE_NO_MAGICLINKS,
        };
        var fd = Libc.OpenAt2(Fd(root), path, how);
        handle = fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : null;
        return fd >= 0 ? 0 : Libc.Errno;
    }

    public int OpenAt(SafeFileHandle dir, string name, int flags, int mode, out SafeFileHandle? handle)
    {
        var fd = Libc.openat(Fd(dir), name, flags | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NOCTTY, mode);
        handle = fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : null;
        return fd >= 0 ? 0 : Libc.Errno;
    }

    public int MakeDirectory(SafeFileHandle dir, string name, int mode) => Result(Libc.mkdirat(Fd(dir), name, mode));

    public int Symlink(SafeFileHandle dir, string name, string target) => Result(Libc.symlinkat(target, Fd(dir), name));

    public int Link(SafeFileHandle targetDir, string targetName, SafeFileHandle dir, string name) =>
        Result(Libc.linkat(Fd(targetDir), targetName, Fd(dir), name, 0));

    public int MakeNode(SafeFileHandle dir, string name, int typeAndMode, ulong device) => Result(Libc.mknodat(Fd(dir), name, typeAndMode, device));

    public int Chown(SafeFileHandle dir, string name, int uid, int gid) =>
        Result(Libc.fchownat(Fd(dir), name, (uint)uid, (uint)gid, Libc.AT_SYMLINK_NOFOLLOW));

    // fchmod refuses O_PATH descriptors; its /proc/self/fd link names exactly the object opened.
    public int Chmod(SafeFileHandle node, int mode) => Result(Libc.fchmodat(Libc.AT_FDCWD, $"/proc/self/fd/{Fd(node)}", (uint)mode, 0));

    public int SetXattr(SafeFileHandle dir, string name, string attribute, ReadOnlySpan<byte> value)
    {
        fixed (byte* v = value)
        {
            return Result(Libc.lsetxattr($"/proc/self/fd/{Fd(dir)}/{name}", attribute, v, (nuint)value.Length, 0));
        }
    }

    public int SetTimes(SafeFileHandle dir, string name, long seconds, long nanoseconds)
    {
        var ts = stackalloc Libc.Timespec[2];
        ts[0] = new Libc.Timespec { Seconds = seconds, Nanoseconds = nanoseconds };
        ts[1] = ts[0];
        return Result(Libc.utimensat(Fd(dir), name, ts, Libc.AT_SYMLINK_NOFOLLOW));
    }

    public int Unlink(SafeFileHandle dir, string name, int flags) => Result(Libc.unlinkat(Fd(dir), name, flags));

    public int Stat(SafeFileHandle dir, string name, out TreeStat stat)
    {
        Libc.Statx st;
        var self = name == ".";
        if (Libc.statx(Fd(dir), self ? "" : name, Libc.AT_SYMLINK_NOFOLLOW | (self ? Libc.AT_EMPTY_PATH : 0), Libc.STATX_BASIC_STATS, &st) < 0)
        {
            stat = default;
            return Libc.Errno;
        }

        string? link = null;
        if ((st.Mode & Libc.S_IFMT) == Libc.S_IFLNK)
        {
            byte* buffer = stackalloc byte[4096];
            nint n = Libc.readlinkat(Fd(dir), name, buffer, 4096);
            link = n < 0 ? null : Encoding.UTF8.GetString(buffer, (int)n);
        }

        stat = new TreeStat(st.Mode, (long)st.Size, (int)st.Uid, (int)st.Gid, st.MtimeSeconds, st.MtimeNanoseconds, (int)st.RdevMajor, (int)st.RdevMinor, link);
        return 0;
    }

    public void Dispose()
    {
    }

    private static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    private static int Result(int rc) => rc < 0 ? Libc.Errno : 0;
}
