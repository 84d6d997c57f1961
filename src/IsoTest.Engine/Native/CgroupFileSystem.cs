// The real cgroupfs behind ICgroupFileSystem: the kernel calls live here, with the rest of the interop (STYLE.md 7).
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

using IsoTest.Engine.Cgroups;

namespace IsoTest.Engine.Native;

/// <summary>
/// The real <see cref="ICgroupFileSystem"/>: direct open/write/mkdir/rmdir through Tmds.LibC. Container creation
/// is on the hot path, and FileStream adds an fstat, a buffer and exception-based errors for every small write.
/// </summary>
internal sealed unsafe class CgroupFileSystem : ICgroupFileSystem
{
    public static CgroupFileSystem Instance { get; } = new();

    private readonly Lock _deviceProgramLock = new();
    private (byte[] Program, int Fd)? _deviceProgram;

    private CgroupFileSystem()
    {
    }

    /// <summary>The errnos cgroupfs calls give, with their names for messages and what the drivers make of them.</summary>
    private static readonly (int Errno, string Name, FsOutcome Outcome)[] Known =
    [
        (EPERM, "EPERM", FsOutcome.NotPermitted), (EACCES, "EACCES", FsOutcome.Denied), (EROFS, "EROFS", FsOutcome.Denied),
        (ENOENT, "ENOENT", FsOutcome.NotFound), (EEXIST, "EEXIST", FsOutcome.Exists), (EBUSY, "EBUSY", FsOutcome.Busy),
        (EINVAL, "EINVAL", FsOutcome.Invalid), (ESRCH, "ESRCH", FsOutcome.NoSuchProcess), (EIO, "EIO", FsOutcome.Other),
        (ENOTDIR, "ENOTDIR", FsOutcome.Other), (ENOSPC, "ENOSPC", FsOutcome.Other), (EOPNOTSUPP, "EOPNOTSUPP", FsOutcome.Other),
    ];

    /// <summary>An errno as the drivers see it: the outcome they branch on and the kernel's words with the errno's name.</summary>
    public static FsResult Result(int error)
    {
        if (error == 0)
        {
            return FsResult.Ok;
        }

        var known = Array.Find(Known, k => k.Errno == error);
        var name = known.Name ?? "errno " + error.ToString(CultureInfo.InvariantCulture);
        return new FsResult(known.Name is null ? FsOutcome.Other : known.Outcome, $"{Marshal.GetPInvokeErrorMessage(error)} ({name})");
    }

    public FsResult CreateDirectory(string path)
    {
        fixed (byte* p = Utf8(path))
        {
            return Result(mkdir(p, 0x1ED) /* 0755 */ == 0 ? 0 : errno);
        }
    }

    public FsResult RemoveDirectory(string path)
    {
        fixed (byte* p = Utf8(path))
        {
            return Result(rmdir(p) == 0 ? 0 : errno);
        }
    }

    public FsResult WriteFile(string path, string value)
    {
        var fd = Open(path, O_WRONLY);
        if (fd < 0)
        {
            return Result(errno);
        }

        try
        {
            // cgroupfs parses each write(2) as one value, so it must go in one call; a short write is an error.
            var bytes = Encoding.UTF8.GetBytes(value);
            fixed (byte* b = bytes)
            {
                ssize_t n;
                do
                {
                    n = write(fd, b, bytes.Length);
                }
                while (n < 0 && errno == EINTR);

                return Result(n < 0 ? errno : n == bytes.Length ? 0 : EIO);
            }
        }
        finally
        {
            close(fd);
        }
    }

    public FsResult ReadFile(string path, out string? content)
    {
        content = null;
        var fd = Open(path, O_RDONLY);
        if (fd < 0)
        {
            return Result(errno);
        }

        try
        {
            // cgroupfs reports st_size 0 or 4096 whatever the content; read to EOF instead.
            var buffer = new byte[4096];
            var length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                ssize_t n;
                fixed (byte* b = &buffer[length])
                {
                    n = read(fd, b, buffer.Length - length);
                }

                if (n < 0)
                {
                    if (errno == EINTR)
                    {
                        continue;
                    }

                    return Result(errno);
                }

                if (n == 0)
                {
                    content = Encoding.UTF8.GetString(buffer, 0, length);
                    return FsResult.Ok;
                }

                length += (int)n;
            }
        }
        finally
        {
            close(fd);
        }
    }

    public bool Exists(string path)
    {
        fixed (byte* p = Utf8(path))
        {
            return access(p, F_OK) == 0;
        }
    }

    public IReadOnlyList<string> ListDirectories(string path)
    {
        try
        {
            return Directory.EnumerateDirectories(path).Select(Path.GetFileName).OfType<string>().ToList();
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
    }

    public FsResult AttachDeviceFilter(string dir, byte[] program)
    {
        // Loaded once and attached to every container's group: the verifier runs once per engine, not per container.
        int fd;
        lock (_deviceProgramLock)
        {
            if (_deviceProgram is null || !_deviceProgram.Value.Program.AsSpan().SequenceEqual(program))
            {
                fd = Bpf.LoadCgroupDeviceProgram(program, out var log);
                if (fd < 0)
                {
                    var failed = Result(-fd);
                    return log.Length == 0 ? failed : failed with { Text = failed.Text + "; verifier: " + log };
                }

                if (_deviceProgram is { } old)
                {
                    Bpf.CloseProgram(old.Fd);
                }

                _deviceProgram = (program, fd);
            }

            fd = _deviceProgram.Value.Fd;
        }

        return Result(Bpf.AttachCgroupDevice(dir, fd));
    }

    public FsResult LockDirectory(string path, bool exclusive, out IDisposable? held)
    {
        held = null;
        var fd = Open(path, Libc.O_DIRECTORY); // O_RDONLY: flock needs an open file, not an O_PATH one
        if (fd < 0)
        {
            return Result(errno);
        }

        var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        while (Libc.flock(fd, (exclusive ? Libc.LOCK_EX : Libc.LOCK_SH) | Libc.LOCK_NB) < 0)
        {
            var error = errno;
            if (error == EINTR)
            {
                continue;
            }

            handle.Dispose();
            return Result(error == Libc.EAGAIN ? EBUSY : error);
        }

        held = handle;
        return FsResult.Ok;
    }

    public FsResult Kill(int pid) => Result(kill(pid, SIGKILL) == 0 ? 0 : errno);

    public void Pause(TimeSpan delay) => Thread.Sleep(delay);

    private static int Open(string path, int flags)
    {
        fixed (byte* p = Utf8(path))
        {
            return open(p, flags | O_CLOEXEC, 0);
        }
    }

    private static byte[] Utf8(string path)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, bytes);
        return bytes;
    }
}
