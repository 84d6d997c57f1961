using System.Text;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>
/// Reads a file of a container's root filesystem from the host with every path component resolved INSIDE
/// that root, as the container would see it: an absolute symlink or <c>..</c> stays in the root, so a
/// root whose <c>etc/passwd</c> links to <c>/etc/shadow</c> reads the root's own (missing) shadow, never
/// the host's. openat2(RESOLVE_IN_ROOT) where the kernel has it (5.6+); else a walk that resolves each
/// component with O_NOFOLLOW and follows symlinks itself.
/// </summary>
internal static unsafe class RootedFile
{
    private const int MaxSymlinks = 40; // the kernel's own limit (ELOOP)

    /// <summary>The file's bytes, or null when it does not exist (or is not reachable) inside the root.</summary>
    /// <param name="root">The root directory on the host.</param>
    /// <param name="path">The path inside the root, e.g. <c>etc/passwd</c>.</param>
    /// <param name="walk">Use the component walk even where openat2 exists (for tests of the fallback).</param>
    public static byte[]? ReadAll(string root, string path, bool walk = false)
    {
        int rootFd = Libc.open(root, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (rootFd < 0)
        {
            return null;
        }

        try
        {
            int fd = walk ? -1 : OpenAt2(rootFd, path);
            if (walk || (fd < 0 && Libc.Errno is Libc.ENOSYS or Libc.EINVAL or Libc.EPERM))
            {
                // No openat2 (older kernel, or a seccomp filter that refuses it): resolve by hand.
                fd = Walk(rootFd, path);
            }

            if (fd < 0)
            {
                return null;
            }

            using var handle = new SafeFileHandle(fd, ownsHandle: true);
            using var stream = new FileStream(handle, FileAccess.Read);
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            return buffer.ToArray();
        }
        catch (IOException)
        {
            return null; // a directory, or unreadable: as good as absent for a user database
        }
        finally
        {
            Libc.close(rootFd);
        }
    }

    private static int OpenAt2(int rootFd, string path)
    {
        var how = new Libc.OpenHow { Flags = (ulong)(Libc.O_RDONLY | Libc.O_CLOEXEC), Resolve = Libc.RESOLVE_IN_ROOT | Libc.RESOLVE_NO_MAGICLINKS };
        return Libc.OpenAt2(rootFd, path, how);
    }

    /// <summary>
    /// Resolves <paramref name="path"/> one component at a time from the root: each opened O_PATH|O_NOFOLLOW,
    /// a symlink's target read and spliced into the remaining path (an absolute one restarts at the root),
    /// <c>..</c> never above the root. Returns an O_RDONLY descriptor of the file, or -1.
    /// </summary>
    private static int Walk(int rootFd, string path)
    {
        var pending = new Stack<string>(Components(path).Reverse());
        var dirs = new List<int>(); // descriptors of the directories walked into; the root is not among them
        int followed = 0;
        try
        {
            while (pending.TryPop(out var name))
            {
                int current = dirs.Count == 0 ? rootFd : dirs[^1];
                if (name == "..")
                {
                    if (dirs.Count > 0)
                    {
                        Libc.close(dirs[^1]);
                        dirs.RemoveAt(dirs.Count - 1);
                    }

                    continue;
                }

                if (ReadLink(current, name) is { } target)
                {
                    if (++followed > MaxSymlinks)
                    {
                        return -1;
                    }

                    foreach (var part in Components(target).Reverse())
                    {
                        pending.Push(part);
                    }

                    if (target.StartsWith('/'))
                    {
                        dirs.ForEach(fd => Libc.close(fd));
                        dirs.Clear();
                    }

                    continue;
                }

                if (pending.Count == 0)
                {
                    return Libc.openat(current, name, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                }

                int next = Libc.openat(current, name, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                if (next < 0)
                {
                    return -1;
                }

                dirs.Add(next);
            }

            return -1; // the path named the root itself
        }
        finally
        {
            dirs.ForEach(fd => Libc.close(fd));
        }
    }

    private static string? ReadLink(int dirFd, string name)
    {
        byte* buffer = stackalloc byte[4096];
        nint n = Libc.readlinkat(dirFd, name, buffer, 4096);
        return n < 0 ? null : Encoding.UTF8.GetString(buffer, (int)n);
    }

    private static IEnumerable<string> Components(string path) => path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(c => c != ".");
}
