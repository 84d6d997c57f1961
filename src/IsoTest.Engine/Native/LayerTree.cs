using System.Text;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>What kind of object a path inside a <see cref="LayerTree"/> is.</summary>
internal enum TreeNodeKind
{
    Missing,
    Directory,
    File,
    Symlink,
    Other,
}

/// <summary>One object inside a <see cref="LayerTree"/>, as lstat sees it (a symlink is not followed).</summary>
/// <param name="Kind">Directory, file, symlink or other.</param>
/// <param name="Mode">The permission bits with setuid, setgid and sticky (07777).</param>
/// <param name="FileType">The S_IFMT bits, for archive headers of special files.</param>
/// <param name="Size">Bytes (of a regular file).</param>
/// <param name="Uid">The owner, as the host sees it.</param>
/// <param name="Gid">The group, as the host sees it.</param>
/// <param name="Modified">The mtime.</param>
/// <param name="LinkTarget">A symlink's target as written; null for anything else.</param>
/// <param name="DeviceMajor">A device node's major number.</param>
/// <param name="DeviceMinor">A device node's minor number.</param>
internal sealed record TreeEntry(TreeNodeKind Kind, int Mode, int FileType, long Size, int Uid, int Gid, DateTimeOffset Modified, string? LinkTarget, int DeviceMajor, int DeviceMinor)
{
    public bool IsFifo => FileType == Libc.S_IFIFO;

    public bool IsCharacterDevice => FileType == Libc.S_IFCHR;

    public bool IsBlockDevice => FileType == Libc.S_IFBLK;
}

/// <summary>A failed operation inside a layer tree, worded with the path inside the layer and the kernel's words.</summary>
internal sealed class LayerTreeException(string message, bool escapes = false, bool readOnly = false, bool denied = false) : Exception(message)
{
    /// <summary>True when the kernel refused for want of permission (EACCES, EPERM).</summary>
    public bool Denied { get; } = denied;

    /// <summary>True when the kernel refused a write because the filesystem is read-only (EROFS).</summary>
    public bool ReadOnly { get; } = readOnly;

    /// <summary>True when the kernel refused because the path would leave the layer root (EXDEV from RESOLVE_IN_ROOT, ELOOP).</summary>
    public bool Escapes { get; } = escapes;
}

/// <summary>
/// A directory tree written as if it were <c>/</c>: every parent is opened with
/// <c>openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)</c>, so <c>..</c> and symlinks (absolute or relative)
/// resolve inside the root, as they would inside the container, and never reach the host; the last
/// component is created or changed with *at calls that do not follow it. Paths are relative to the root
/// ("usr/bin/sh"); the caller has cleaned them lexically.
/// </summary>
internal sealed unsafe class LayerTree : IDisposable
{
    private readonly SafeFileHandle _root;

    private LayerTree(SafeFileHandle root, string path)
    {
        _root = root;
        Path = path;
    }

    public string Path { get; }

    /// <summary>
    /// The root a process sees (<c>/proc/PID/root</c>: its mount namespace, every mount in it), for writing into
    /// and reading from a running container. <paramref name="stillThatProcess"/> is asked after the open: true means
    /// the pid was not reused meanwhile, so the descriptor is that process's root and nobody else's.
    /// </summary>
    public static LayerTree OpenRootOf(int pid, Func<bool> stillThatProcess)
    {
        var path = $"/proc/{pid}/root/.";
        var fd = Libc.open(path, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw Fail("open", path, Libc.Errno);
        }

        var tree = new LayerTree(new SafeFileHandle(fd, ownsHandle: true), path);
        if (!stillThatProcess())
        {
            tree.Dispose();
            throw new LayerTreeException($"process {pid} exited while its root was opened");
        }

        return tree;
    }

    public static LayerTree Open(string path)
    {
        var fd = Libc.open(path, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC | Libc.O_NOFOLLOW, 0);
        return fd < 0 ? throw Fail("open", path, Libc.Errno) : new LayerTree(new SafeFileHandle(fd, ownsHandle: true), path);
    }

    /// <summary>Makes every missing directory of <paramref name="path"/> (0755, as tar implies them) and returns nothing.</summary>
    public void MakeParents(string path)
    {
        var slash = path.LastIndexOf('/');
        if (slash > 0)
        {
            MakeDirectories(path[..slash]);
        }
    }

    /// <summary>Creates directory <paramref name="path"/> and missing parents; an existing directory is kept.</summary>
    public void MakeDirectories(string path)
    {
        var built = new StringBuilder();
        foreach (var part in path.Split('/'))
        {
            using var parent = OpenParentOf(built.Length == 0 ? part : built + "/" + part, out var name);
            if (Libc.mkdirat(Fd(parent), name, 0x1ED /* 0755 */) < 0)
            {
                var errno = Libc.Errno;
                if (errno != Libc.EEXIST)
                {
                    throw Fail("mkdir", path, errno);
                }

                // EEXIST: a directory, or a symlink that resolves to one inside the root; a file, or a
                // symlink to nothing inside this layer, cannot hold the entry.
                var sofar = built.Length == 0 ? part : built + "/" + part;
                if (!TryOpenInRoot(sofar, Libc.O_PATH | Libc.O_DIRECTORY, out var probe, out var why))
                {
                    throw new LayerTreeException($"'{path}' goes through '{sofar}', which is not a directory inside the layer (a file, or a symlink to nothing in this layer): {Libc.ErrnoText(why)}", escapes: true);
                }

                probe!.Dispose();
            }

            built.Append(built.Length == 0 ? "" : "/").Append(part);
        }
    }

    public TreeNodeKind Kind(string path)
    {
        using var parent = OpenParentOf(path, out var name, mustExist: false);
        if (parent is null)
        {
            return TreeNodeKind.Missing;
        }

        Libc.Statx st;
        if (Libc.statx(Fd(parent), name, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_TYPE, &st) < 0)
        {
            var errno = Libc.Errno;
            return errno == Libc.ENOENT || errno == Libc.ENOTDIR ? TreeNodeKind.Missing : throw Fail("stat", path, errno);
        }

        return (st.Mode & Libc.S_IFMT) switch
        {
            Libc.S_IFDIR => TreeNodeKind.Directory,
            Libc.S_IFREG => TreeNodeKind.File,
            Libc.S_IFLNK => TreeNodeKind.Symlink,
            _ => TreeNodeKind.Other,
        };
    }

    /// <summary>Removes whatever is at <paramref name="path"/> (a directory with its contents; a symlink itself, never its target).</summary>
    public void Remove(string path)
    {
        using var parent = OpenParentOf(path, out var name, mustExist: false);
        if (parent is null || Libc.unlinkat(Fd(parent), name, 0) == 0)
        {
            return;
        }

        var errno = Libc.Errno;
        if (errno == Libc.ENOENT)
        {
            return;
        }

        if (errno != Libc.EISDIR)
        {
            throw Fail("unlink", path, errno);
        }

        // A directory: its entries are reached through the parent's descriptor (/proc/self/fd), so the
        // walk starts inside the root; .NET's recursive delete unlinks symlinks instead of following them.
        Directory.Delete($"/proc/self/fd/{Fd(parent)}/{name}", recursive: true);
    }

    /// <summary>Creates a regular file (replacing nothing: the caller removed what was there) open for writing.</summary>
    public FileStream CreateFile(string path)
    {
        using var parent = OpenParentOf(path, out var name);
        var fd = Libc.openat(Fd(parent), name, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NOCTTY, 0x180 /* 0600 */);
        return fd < 0 ? throw Fail("create", path, Libc.Errno) : new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, 1);
    }

    public void MakeDirectory(string path)
    {
        using var parent = OpenParentOf(path, out var name);
        if (Libc.mkdirat(Fd(parent), name, 0x1C0 /* 0700 */) < 0 && Libc.Errno is var errno && errno != Libc.EEXIST)
        {
            throw Fail("mkdir", path, errno);
        }
    }

    public void Symlink(string path, string target)
    {
        using var parent = OpenParentOf(path, out var name);
        if (Libc.symlinkat(target, Fd(parent), name) < 0)
        {
            throw Fail("symlink", path, Libc.Errno);
        }
    }

    /// <summary>A hard link to <paramref name="target"/>, itself resolved inside the root and not followed if it is a symlink.</summary>
    public void Hardlink(string path, string target)
    {
        using var targetParent = OpenParentOf(target, out var targetName, mustExist: false)
            ?? throw new LayerTreeException($"hard link '{path}' points to '{target}', which the layer does not contain (earlier in the archive)");
        using var parent = OpenParentOf(path, out var name);
        if (Libc.linkat(Fd(targetParent), targetName, Fd(parent), name, 0) < 0)
        {
            var errno = Libc.Errno;
            throw errno == Libc.ENOENT
                ? new LayerTreeException($"hard link '{path}' points to '{target}', which the layer does not contain (earlier in the archive)")
                : Fail("link", path, errno);
        }
    }

    /// <summary>A device node, FIFO or overlayfs whiteout (a character device 0:0, which the kernel lets any user make).</summary>
    public void MakeNode(string path, NodeKind kind, int mode, int major, int minor)
    {
        int typeAndMode = mode | kind switch
        {
            NodeKind.CharacterDevice => Libc.S_IFCHR,
            NodeKind.BlockDevice => Libc.S_IFBLK,
            _ => Libc.S_IFIFO,
        };
        using var parent = OpenParentOf(path, out var name);
        ulong ma = (uint)major, mi = (uint)minor;
        var dev = ((ma & 0xfffff000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffffff00) << 12) | (mi & 0xff); // glibc's makedev
        if (Libc.mknodat(Fd(parent), name, typeAndMode, dev) < 0)
        {
            throw Fail("mknod", path, Libc.Errno);
        }
    }

    /// <summary>chown without following; false when the kernel refuses (EPERM, EINVAL: an id this user may not give).</summary>
    public bool TryChown(string path, int uid, int gid)
    {
        using var parent = OpenParentOf(path, out var name);
        if (Libc.fchownat(Fd(parent), name, (uint)uid, (uint)gid, Libc.AT_SYMLINK_NOFOLLOW) == 0)
        {
            return true;
        }

        var errno = Libc.Errno;
        return errno is Libc.EPERM or Libc.EINVAL ? false : throw Fail("chown", path, errno);
    }

    /// <summary>Sets the mode (with setuid/setgid/sticky) of a file, directory or node; symlinks have none.</summary>
    public void Chmod(string path, int mode)
    {
        using var node = OpenInRoot(path, Libc.O_PATH | Libc.O_NOFOLLOW);
        // fchmod refuses O_PATH descriptors; its /proc/self/fd link names exactly the object opened.
        if (Libc.fchmodat(Libc.AT_FDCWD, $"/proc/self/fd/{Fd(node)}", (uint)mode, 0) < 0)
        {
            throw Fail("chmod", path, Libc.Errno);
        }
    }

    /// <summary>Sets an extended attribute on the object itself (not a symlink's target); false when this user may not set that namespace.</summary>
    public bool TrySetXattr(string path, string attribute, ReadOnlySpan<byte> value)
    {
        using var parent = OpenParentOf(path, out var name);
        fixed (byte* v = value)
        {
            if (Libc.lsetxattr($"/proc/self/fd/{Fd(parent)}/{name}", attribute, v, (nuint)value.Length, 0) == 0)
            {
                return true;
            }
        }

        var errno = Libc.Errno;
        return errno is Libc.EPERM or Libc.ENOTSUP or Libc.EACCES ? false : throw Fail($"setxattr {attribute}", path, errno);
    }

    public void SetTimes(string path, DateTimeOffset modified)
    {
        using var parent = OpenParentOf(path, out var name);
        var ts = stackalloc Libc.Timespec[2];
        var seconds = Math.DivRem(modified.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks, TimeSpan.TicksPerSecond, out var rest);
        ts[0] = new Libc.Timespec { Seconds = seconds, Nanoseconds = rest * 100 };
        ts[1] = ts[0];
        if (Libc.utimensat(Fd(parent), name, ts, Libc.AT_SYMLINK_NOFOLLOW) < 0)
        {
            throw Fail("utimensat", path, Libc.Errno);
        }
    }

    /// <summary>What is at <paramref name="path"/> ("" for the root itself), not following a last symlink; null when nothing is.</summary>
    public TreeEntry? Stat(string path)
    {
        SafeFileHandle? parent;
        string name;
        if (path.Length == 0)
        {
            (parent, name) = (OpenInRoot(".", Libc.O_PATH | Libc.O_DIRECTORY), ".");
        }
        else
        {
            parent = OpenParentOf(path, out name, mustExist: false);
        }

        using (parent)
        {
            if (parent is null)
            {
                return null;
            }

            Libc.Statx st;
            if (Libc.statx(Fd(parent), name, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, &st) < 0)
            {
                var errno = Libc.Errno;
                return errno == Libc.ENOENT || errno == Libc.ENOTDIR ? null : throw Fail("stat", path, errno);
            }

            var type = st.Mode & Libc.S_IFMT;
            var kind = type switch
            {
                Libc.S_IFDIR => TreeNodeKind.Directory,
                Libc.S_IFREG => TreeNodeKind.File,
                Libc.S_IFLNK => TreeNodeKind.Symlink,
                _ => TreeNodeKind.Other,
            };
            var modified = DateTimeOffset.FromUnixTimeSeconds(st.MtimeSeconds).AddTicks(st.MtimeNanoseconds / 100);
            var link = kind == TreeNodeKind.Symlink ? ReadLink(Fd(parent), name) : null;
            return new TreeEntry(kind, st.Mode & 0xFFF, type, (long)st.Size, (int)st.Uid, (int)st.Gid, modified, link, (int)st.RdevMajor, (int)st.RdevMinor);
        }
    }

    /// <summary>True when <paramref name="path"/> is a directory, following symlinks inside the root.</summary>
    public bool IsDirectory(string path)
    {
        if (!TryOpenInRoot(path.Length == 0 ? "." : path, Libc.O_PATH | Libc.O_DIRECTORY, out var handle, out _))
        {
            return false;
        }

        handle!.Dispose();
        return true;
    }

    /// <summary>The names in directory <paramref name="path"/> ("" for the root), read through a descriptor opened inside the root.</summary>
    public IReadOnlyList<string> List(string path)
    {
        using var dir = OpenInRoot(path.Length == 0 ? "." : path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW);
        // The descriptor pins the directory: listing it through /proc/self/fd cannot be redirected elsewhere.
        return [.. Directory.EnumerateFileSystemEntries($"/proc/self/fd/{Fd(dir)}").Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal)!];
    }

    /// <summary>A regular file at <paramref name="path"/> open for reading (a last symlink is not followed).</summary>
    public FileStream OpenRead(string path)
    {
        using var parent = OpenParentOf(path, out var name);
        var fd = Libc.openat(Fd(parent), name, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NOCTTY | Libc.O_NONBLOCK, 0);
        return fd < 0 ? throw Fail("open", path, Libc.Errno) : new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read, 1 << 16);
    }

    private static string? ReadLink(int dirFd, string name)
    {
        byte* buffer = stackalloc byte[4096];
        nint n = Libc.readlinkat(dirFd, name, buffer, 4096);
        return n < 0 ? null : Encoding.UTF8.GetString(buffer, (int)n);
    }

    public void Dispose() => _root.Dispose();

    private static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    /// <summary>Opens the directory holding <paramref name="path"/>'s last component, resolved inside the root.</summary>
    private SafeFileHandle OpenParentOf(string path, out string name) => OpenParentOf(path, out name, mustExist: true)!;

    private SafeFileHandle? OpenParentOf(string path, out string name, bool mustExist)
    {
        var slash = path.LastIndexOf('/');
        name = slash < 0 ? path : path[(slash + 1)..];
        if (name.Length == 0 || name is "." or "..")
        {
            throw new LayerTreeException($"'{path}' has no name to create");
        }

        if (slash < 0)
        {
            return OpenInRoot(".", Libc.O_PATH | Libc.O_DIRECTORY);
        }

        if (mustExist)
        {
            return OpenInRoot(path[..slash], Libc.O_PATH | Libc.O_DIRECTORY);
        }

        return TryOpenInRoot(path[..slash], Libc.O_PATH | Libc.O_DIRECTORY, out var handle, out var errno)
            ? handle
            : errno is Libc.ENOENT or Libc.ENOTDIR ? null : throw Fail("open", path[..slash], errno);
    }

    private SafeFileHandle OpenInRoot(string path, int flags) =>
        TryOpenInRoot(path, flags, out var handle, out var errno) ? handle! : throw Fail("open", path, errno);

    private bool TryOpenInRoot(string path, int flags, out SafeFileHandle? handle, out int errno)
    {
        var how = new Libc.OpenHow
        {
            Flags = (ulong)(flags | Libc.O_CLOEXEC),
            Resolve = Libc.RESOLVE_IN_ROOT | Libc.RESOLVE_NO_MAGICLINKS,
        };
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            var fd = Libc.syscall(Libc.SYS_openat2, Fd(_root), p, &how, (nuint)sizeof(Libc.OpenHow));
            if (fd >= 0)
            {
                handle = new SafeFileHandle((nint)fd, ownsHandle: true);
                errno = 0;
                return true;
            }
        }

        handle = null;
        errno = Libc.Errno;
        return false;
    }

    private static LayerTreeException Fail(string operation, string path, int errno) =>
        new($"{operation} '{path}': {Libc.ErrnoText(errno)} (errno {errno})", errno is Libc.EXDEV or Libc.ELOOP, errno == Libc.EROFS, errno is Libc.EACCES or Libc.EPERM);
}

/// <summary>The special files a layer may hold (the file type bits stay in Native/).</summary>
internal enum NodeKind
{
    CharacterDevice,
    BlockDevice,
    Fifo,
}
