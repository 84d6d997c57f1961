using System.Text;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>The *at calls the layer extractor makes (Native/LayerTree) and the store's file locks.</summary>
internal static unsafe partial class Libc
{
    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_REMOVEDIR = 0x200;
    public const int AT_EMPTY_PATH = 0x1000;
    public const int O_WRONLY = 1;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;
    public const int O_NOCTTY = 0x100;
    public const int O_TRUNC = 0x200;
    public const int O_NONBLOCK = 0x800;

    // The two open flags whose bits differ by architecture: x86_64 takes <asm-generic/fcntl.h>
    // (O_DIRECTORY 0200000, O_NOFOLLOW 0400000), arm64's <asm/fcntl.h> moves them down (040000, 0100000)
    // to make room for O_DIRECT and O_LARGEFILE. A wrong bit is not an error: it silently asks for
    // another flag (on arm64 x86's O_DIRECTORY is O_DIRECT), so directories and symlinks go unchecked.
    public static readonly int O_DIRECTORY = OpenFlagsFor(RuntimeInformation.ProcessArchitecture).Directory;
    public static readonly int O_NOFOLLOW = OpenFlagsFor(RuntimeInformation.ProcessArchitecture).NoFollow;
    public const int O_PATH = 0x200000;
    public const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    public const ulong RESOLVE_IN_ROOT = 0x10;
    public const long SYS_openat2 = 437; // the same number on x86_64 and arm64 (the unified table)
    public const int S_IFMT = 0xF000;
    public const int S_IFDIR = 0x4000;
    public const int S_IFCHR = 0x2000;
    public const int S_IFBLK = 0x6000;
    public const int S_IFREG = 0x8000;
    public const int S_IFIFO = 0x1000;
    public const int S_IFLNK = 0xA000;
    public const int LOCK_SH = 1;
    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;
    public const int LOCK_UN = 8;
    public const int EEXIST = 17;
    public const int EPERM = 1;
    public const int EISDIR = 21;
    public const int ENOTEMPTY = 39;
    public const int ELOOP = 40;
    public const int EXDEV = 18;
    public const int ENOTSUP = 95;
    public const int ENOSYS = 38;
    public const int EINVAL = 22;
    public const uint STATX_TYPE = 0x1;
    public const uint STATX_MODE = 0x2;
    public const uint STATX_BASIC_STATS = 0x7ff;
    public const int EROFS = 30;

    /// <summary>O_DIRECTORY and O_NOFOLLOW on <paramref name="architecture"/> (the engine ships for x64 and arm64).</summary>
    public static (int Directory, int NoFollow) OpenFlagsFor(Architecture architecture) => architecture switch
    {
        Architecture.X64 => (0x10000, 0x20000),
        Architecture.Arm64 => (0x4000, 0x8000),
        _ => throw new PlatformNotSupportedException($"The engine knows the open(2) flags of x64 and arm64, not {architecture}."),
    };

    [StructLayout(LayoutKind.Sequential)]
    public struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>struct statx is the same on every architecture; only the fields read here are named.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct Statx
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(16)] public uint Nlink;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(112)] public long MtimeSeconds;
        [FieldOffset(120)] public uint MtimeNanoseconds;
        [FieldOffset(128)] public uint RdevMajor;
        [FieldOffset(132)] public uint RdevMinor;
    }

    [LibraryImport(Lib, SetLastError = true)]
    public static partial long syscall(long number, int dirfd, byte* path, OpenHow* how, nuint size);

    /// <summary>
    /// openat2; a descriptor or -1 (errno in <see cref="Errno"/>). With RESOLVE_IN_ROOT or RESOLVE_BENEATH the kernel
    /// fails EAGAIN when a rename or a mount anywhere raced the walk of a "..", as it cannot then prove the walk stayed
    /// inside, and asks the caller to try again (a busy engine mounts all the time): a few tries, then the EAGAIN stands.
    /// </summary>
    public static int OpenAt2(int dirfd, string path, OpenHow how)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            long fd = -1;
            for (var i = 0; i < 64 && (fd = syscall(SYS_openat2, dirfd, p, &how, (nuint)sizeof(OpenHow))) < 0 && Errno == EAGAIN; i++)
            {
            }

            return (int)fd;
        }
    }

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int openat(int dirfd, string path, int flags, int mode);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mkdirat(int dirfd, string path, int mode);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mknodat(int dirfd, string path, int mode, ulong dev);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int symlinkat(string target, int dirfd, string path);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int linkat(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int unlinkat(int dirfd, string path, int flags);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int fchownat(int dirfd, string path, uint uid, uint gid, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fchmod(int fd, uint mode);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int fchmodat(int dirfd, string path, uint mode, int flags);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int utimensat(int dirfd, string path, Timespec* times, int flags);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int lsetxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint lgetxattr(string path, string name, byte* value, nuint size);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int statx(int dirfd, string path, int flags, uint mask, Statx* buf);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int flock(int fd, int operation);

    [LibraryImport(Lib, SetLastError = true)]
    private static partial nint fdopendir(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    private static partial nint readdir(nint dir);

    [LibraryImport(Lib)]
    private static partial int closedir(nint dir);

    /// <summary>
    /// The names in the directory open on <paramref name="dir"/> (not "." and ".."), read from the descriptor itself:
    /// no path is opened again, so no permission is asked again (the open asked it, perhaps in another user namespace).
    /// </summary>
    public static List<string> ReadDirectory(SafeFileHandle dir)
    {
        // fdopendir takes the descriptor it is given; a duplicate leaves the caller's open. Both glibc's and musl's
        // struct dirent put d_name after d_ino (8), d_off (8), d_reclen (2) and d_type (1).
        var dup = fcntl((int)dir.DangerousGetHandle(), F_DUPFD_CLOEXEC, 0);
        GC.KeepAlive(dir);
        if (dup < 0)
        {
            throw Errors.Native("fcntl F_DUPFD_CLOEXEC", Errno);
        }

        var stream = fdopendir(dup);
        if (stream == 0)
        {
            var errno = Errno;
            close(dup);
            throw Errors.Native("fdopendir", errno);
        }

        try
        {
            var names = new List<string>();
            Marshal.SetLastPInvokeError(0);
            for (nint entry; (entry = readdir(stream)) != 0;)
            {
                var name = Marshal.PtrToStringUTF8(entry + 19)!;
                if (name is not ("." or ".."))
                {
                    names.Add(name);
                }
            }

            return Errno == 0 ? names : throw Errors.Native("readdir", Errno);
        }
        finally
        {
            closedir(stream);
        }
    }

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fsync(int fd);
}
