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
/// <param name="Uid">The owner, as the tree's calls see it: the host for a tree the engine writes itself, the container for a rootless container's root read through its user namespace.</param>
/// <param name="Gid">The group, likewise.</param>
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
internal sealed class LayerTree : IDisposable
{
    private readonly SafeFileHandle _root;
    private readonly ITreeCalls _calls;

    // Directories this tree made or found while writing: a layer or an archive names the same parents for entry
    // after entry, and each check costs three calls (one round trip each through the filer). Only a cache of what was
    // seen: whatever happens to a path later (a container removing it) makes a later call fail, never resolve outside.
    private readonly HashSet<string> _directories = new(StringComparer.Ordinal);

    // The directory the last call's name was in, kept open: one entry takes five or so calls in the same directory,
    // and the next entry is usually there too. A descriptor stays the directory it was opened on, inside the root.
    private string? _parentPath;
    private SafeFileHandle? _parent;

    private LayerTree(SafeFileHandle root, string path, ITreeCalls calls)
    {
        _root = root;
        _calls = calls;
        Path = path;
    }

    public string Path { get; }

    /// <summary>
    /// The root a process sees (<c>/proc/PID/root</c>: its mount namespace, every mount in it), for writing into
    /// and reading from a running container. <paramref name="stillThatProcess"/> is asked after the open: true means
    /// the pid was not reused meanwhile, so the descriptor is that process's root and nobody else's. Every call goes
    /// through <paramref name="calls"/> (null: this process's own), which the tree then owns.
    /// </summary>
    public static LayerTree OpenRootOf(int pid, Func<bool> stillThatProcess, ITreeCalls? calls = null)
    {
        var path = $"/proc/{pid}/root/.";
        var fd = Libc.open(path, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            var errno = Libc.Errno;
            calls?.Dispose();
            throw Fail("open", path, errno);
        }

        var tree = new LayerTree(new SafeFileHandle(fd, ownsHandle: true), path, calls ?? HostTreeCalls.Instance);
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
        return fd < 0 ? throw Fail("open", path, Libc.Errno) : new LayerTree(new SafeFileHandle(fd, ownsHandle: true), path, HostTreeCalls.Instance);
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
        if (_directories.Contains(path))
        {
            return;
        }

        var built = new StringBuilder();
        foreach (var part in path.Split('/'))
        {
            if (_directories.Contains(built.Length == 0 ? part : built + "/" + part))
            {
                built.Append(built.Length == 0 ? "" : "/").Append(part);
                continue;
            }

            using var parent = OpenParentOf(built.Length == 0 ? part : built + "/" + part, out var name);
            if (_calls.MakeDirectory(parent, name, 0x1ED /* 0755 */) is var errno && errno != 0)
            {
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
            _directories.Add(built.ToString());
        }
    }

    public TreeNodeKind Kind(string path)
    {
        using var parent = OpenParentOf(path, out var name, mustExist: false);
        if (parent is null)
        {
            return TreeNodeKind.Missing;
        }

        var errno = _calls.Stat(parent, name, out var st);
        if (errno != 0)
        {
            return errno == Libc.ENOENT || errno == Libc.ENOTDIR ? TreeNodeKind.Missing : throw Fail("stat", path, errno);
        }

        return KindOf(st.Mode);
    }

    /// <summary>Removes whatever is at <paramref name="path"/> (a directory with its contents; a symlink itself, never its target).</summary>
    public void Remove(string path)
    {
        _directories.RemoveWhere(d => d == path || d.StartsWith(path + "/", StringComparison.Ordinal));
        if (_parentPath is { } kept && (kept == path || kept.StartsWith(path + "/", StringComparison.Ordinal)))
        {
            ForgetParent();
        }

        using var parent = OpenParentOf(path, out var name, mustExist: false);
        if (parent is not null)
        {
            RemoveAt(parent, name, path);
        }
    }

    /// <summary>
    /// Removes <paramref name="name"/> in <paramref name="parent"/>: a directory's entries first, each reached through
    /// the descriptor of the directory holding it (opened without following), so the walk never leaves the tree.
    /// </summary>
    private void RemoveAt(SafeFileHandle parent, string name, string path)
    {
        var errno = _calls.Unlink(parent, name, 0);
        if (errno is 0 or Libc.ENOENT)
        {
            return;
        }

        if (errno != Libc.EISDIR)
        {
            throw Fail("unlink", path, errno);
        }

        errno = _calls.OpenAt(parent, name, Libc.O_RDONLY | Libc.O_DIRECTORY, 0, out var dir);
        if (errno != 0)
        {
            throw Fail("open", path, errno);
        }

        using (dir)
        {
            foreach (var child in Libc.ReadDirectory(dir!))
            {
                RemoveAt(dir!, child, path + "/" + child);
            }
        }

        errno = _calls.Unlink(parent, name, Libc.AT_REMOVEDIR);
        if (errno is not (0 or Libc.ENOENT))
        {
            throw Fail("rmdir", path, errno);
        }
    }

    /// <summary>Creates a regular file (replacing nothing: the caller removed what was there) open for writing.</summary>
    public FileStream CreateFile(string path)
    {
        using var parent = OpenParentOf(path, out var name);
        var errno = _calls.OpenAt(parent, name, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL, 0x180 /* 0600 */, out var file);
        return errno != 0 ? throw Fail("create", path, errno) : new FileStream(file!, FileAccess.Write, 1);
    }

    public void MakeDirectory(string path)
    {
        using var parent = OpenParentOf(path, out var name);
        if (_calls.MakeDirectory(parent, name, 0x1C0 /* 0700 */) is var errno && errno != 0 && errno != Libc.EEXIST)
        {
            throw Fail("mkdir", path, errno);
        }
    }

    public void Symlink(string path, string target)
    {
        using var parent = OpenParentOf(path, out var name);
        if (_calls.Symlink(parent, name, target) is var errno && errno != 0)
        {
            throw Fail("symlink", path, errno);
        }
    }

    /// <summary>A hard link to <paramref name="target"/>, itself resolved inside the root and not followed if it is a symlink.</summary>
    public void Hardlink(string path, string target)
    {
        using var targetParent = OpenParentOf(target, out var targetName, mustExist: false)
            ?? throw new LayerTreeException($"hard link '{path}' points to '{target}', which the layer does not contain (earlier in the archive)");
        using var parent = OpenParentOf(path, out var name);
        if (_calls.Link(targetParent, targetName, parent, name) is var errno && errno != 0)
        {
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
        if (_calls.MakeNode(parent, name, typeAndMode, dev) is var errno && errno != 0)
        {
            throw Fail("mknod", path, errno);
        }
    }

    /// <summary>chown without following; false when the kernel refuses (EPERM, EINVAL: an id this user may not give).</summary>
    public bool TryChown(string path, int uid, int gid)
    {
        using var parent = OpenParentOf(path, out var name);
        var errno = _calls.Chown(parent, name, uid, gid);
        return errno == 0 || (errno is Libc.EPERM or Libc.EINVAL ? false : throw Fail("chown", path, errno));
    }

    /// <summary>Sets the mode (with setuid/setgid/sticky) of a file, directory or node; symlinks have none.</summary>
    public void Chmod(string path, int mode)
    {
        using var node = OpenInRoot(path, Libc.O_PATH | Libc.O_NOFOLLOW);
        if (_calls.Chmod(node, mode) is var errno && errno != 0)
        {
            throw Fail("chmod", path, errno);
        }
    }

    /// <summary>Sets an extended attribute on the object itself (not a symlink's target); false when this user may not set that namespace.</summary>
    public bool TrySetXattr(string path, string attribute, ReadOnlySpan<byte> value)
    {
        using var parent = OpenParentOf(path, out var name);
        var errno = _calls.SetXattr(parent, name, attribute, value);
        return errno == 0 || (errno is Libc.EPERM or Libc.ENOTSUP or Libc.EACCES ? false : throw Fail($"setxattr {attribute}", path, errno));
    }

    public void SetTimes(string path, DateTimeOffset modified)
    {
        using var parent = OpenParentOf(path, out var name);
        var seconds = Math.DivRem(modified.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks, TimeSpan.TicksPerSecond, out var rest);
        if (_calls.SetTimes(parent, name, seconds, rest * 100) is var errno && errno != 0)
        {
            throw Fail("utimensat", path, errno);
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

            var errno = _calls.Stat(parent, name, out var st);
            if (errno != 0)
            {
                return errno == Libc.ENOENT || errno == Libc.ENOTDIR ? null : throw Fail("stat", path, errno);
            }

            var modified = DateTimeOffset.FromUnixTimeSeconds(st.MtimeSeconds).AddTicks(st.MtimeNanoseconds / 100);
            return new TreeEntry(KindOf(st.Mode), st.Mode & 0xFFF, st.Mode & Libc.S_IFMT, st.Size, st.Uid, st.Gid, modified, st.LinkTarget, st.RdevMajor, st.RdevMinor);
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
        // The descriptor pins the directory, and reading it asks for no permission again: the open did.
        using var dir = OpenInRoot(path.Length == 0 ? "." : path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW);
        return [.. Libc.ReadDirectory(dir).Order(StringComparer.Ordinal)];
    }

    /// <summary>A regular file at <paramref name="path"/> open for reading (a last symlink is not followed).</summary>
    public FileStream OpenRead(string path)
    {
        using var parent = OpenParentOf(path, out var name);
        var errno = _calls.OpenAt(parent, name, Libc.O_RDONLY | Libc.O_NONBLOCK, 0, out var file);
        return errno != 0 ? throw Fail("open", path, errno) : new FileStream(file!, FileAccess.Read, 1 << 16);
    }

    public void Dispose()
    {
        ForgetParent();
        _root.Dispose();
        _calls.Dispose();
    }

    private void ForgetParent()
    {
        _parent?.Dispose();
        (_parent, _parentPath) = (null, null);
    }

    private static TreeNodeKind KindOf(int mode) => (mode & Libc.S_IFMT) switch
    {
        Libc.S_IFDIR => TreeNodeKind.Directory,
        Libc.S_IFREG => TreeNodeKind.File,
        Libc.S_IFLNK => TreeNodeKind.Symlink,
        _ => TreeNodeKind.Other,
    };

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

        var parentPath = slash < 0 ? "." : path[..slash];
        if (parentPath == _parentPath)
        {
            return Fd.Duplicate(_parent!);
        }

        if (!TryOpenInRoot(parentPath, Libc.O_PATH | Libc.O_DIRECTORY, out var handle, out var errno))
        {
            return !mustExist && errno is Libc.ENOENT or Libc.ENOTDIR ? null : throw Fail("open", parentPath, errno);
        }

        ForgetParent();
        (_parent, _parentPath) = (Fd.Duplicate(handle!), parentPath);
        return handle;
    }

    private SafeFileHandle OpenInRoot(string path, int flags) =>
        TryOpenInRoot(path, flags, out var handle, out var errno) ? handle! : throw Fail("open", path, errno);

    private bool TryOpenInRoot(string path, int flags, out SafeFileHandle? handle, out int errno)
    {
        errno = _calls.OpenInRoot(_root, path, flags, out handle);
        return errno == 0;
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
