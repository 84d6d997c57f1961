using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>
/// A process named by a pidfd instead of its number. Container init is the shim's child, so the shim
/// reaps it and its pid may be reused at any moment after; a pidfd keeps naming the process it was
/// opened for, and a signal through it never reaches whichever process got the number next.
/// </summary>
internal sealed class ProcessHandle : IDisposable
{
    private readonly SafeFileHandle _pidfd;

    private ProcessHandle(SafeFileHandle pidfd) => _pidfd = pidfd;

    /// <summary>A handle on <paramref name="pid"/>, or null when it is gone already (ESRCH) or not a pid.</summary>
    public static ProcessHandle? TryOpen(int pid)
    {
        if (pid <= 0)
        {
            return null;
        }

        // pidfds are opened close-on-exec by the kernel (no flag needed, none other exists before 6.9).
        long fd = Libc.syscall_pidfd_open(Libc.SYS_pidfd_open, pid, 0);
        if (fd < 0)
        {
            int errno = Libc.Errno;
            return errno is Libc.ESRCH or Libc.EINVAL ? null : throw new NativeException("pidfd_open", errno);
        }

        return new ProcessHandle(new SafeFileHandle((nint)fd, ownsHandle: true));
    }

    /// <summary>Whether the process still exists (signal 0 through the pidfd); false once it has exited or this handle is disposed.</summary>
    public bool IsAlive => Signal(0);

    /// <summary>SIGKILLs the process. Gone already (ESRCH, or this handle disposed) is fine.</summary>
    public void Kill() => Signal(Libc.SIGKILL);

    public void Dispose() => _pidfd.Dispose();

    private bool Signal(int signal)
    {
        bool added = false;
        try
        {
            _pidfd.DangerousAddRef(ref added);
            return Libc.syscall_pidfd_send_signal(Libc.SYS_pidfd_send_signal, (int)_pidfd.DangerousGetHandle(), signal, 0, 0) == 0;
        }
        catch (ObjectDisposedException)
        {
            return false; // disposed: the agent is gone, and init with it
        }
        finally
        {
            if (added)
            {
                _pidfd.DangerousRelease();
            }
        }
    }
}
