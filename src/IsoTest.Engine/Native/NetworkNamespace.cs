using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>
/// Makes network namespaces from the calling thread. On Linux a thread's namespaces are its own:
/// unshare and setns here move only the calling thread, which must be a thread the engine owns.
/// </summary>
internal static unsafe class NetworkNamespace
{
    private const int CLONE_NEWNET = 0x40000000;
    private const int SCHED_IDLE = 5;
    private const int SOCK_DGRAM = 2;
    private const nuint SIOCGIFFLAGS = 0x8913;
    private const nuint SIOCSIFFLAGS = 0x8914;
    private const short IFF_UP = 0x1;
    private const short IFF_RUNNING = 0x40;

    /// <summary>The calling thread's network namespace.</summary>
    public static SafeFileHandle OpenCurrent()
    {
        int fd = Libc.open("/proc/thread-self/ns/net", Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        return fd < 0 ? throw Errors.Native("open /proc/thread-self/ns/net", Libc.Errno) : new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// A new network namespace with lo up, held open by the returned descriptor; the calling thread is
    /// back in <paramref name="home"/> afterwards. Throws when the kernel refuses (no CAP_SYS_ADMIN).
    /// </summary>
    public static SafeFileHandle Make(SafeFileHandle home)
    {
        if (Libc.unshare(CLONE_NEWNET) != 0)
        {
            throw Errors.Native("unshare(CLONE_NEWNET)", Libc.Errno);
        }

        try
        {
            BringLoopbackUp();
            return OpenCurrent();
        }
        finally
        {
            if (Libc.setns((int)home.DangerousGetHandle(), CLONE_NEWNET) != 0)
            {
                // The thread is stranded in the new namespace: it must not make another one from here.
                throw Errors.Native("setns back to the engine's network namespace", Libc.Errno);
            }
        }
    }

    /// <summary>
    /// As <see cref="Make(SafeFileHandle)"/>, and <paramref name="inside"/>'s result made in the new namespace too (a
    /// netlink socket bound to it) before the calling thread goes back to <paramref name="home"/>.
    /// </summary>
    public static (SafeFileHandle Namespace, T Inside) Make<T>(SafeFileHandle home, Func<T> inside)
        where T : IDisposable
    {
        if (Libc.unshare(CLONE_NEWNET) != 0)
        {
            throw Errors.Native("unshare(CLONE_NEWNET)", Libc.Errno);
        }

        SafeFileHandle? made = null;
        try
        {
            BringLoopbackUp();
            made = OpenCurrent();
            return (made, inside());
        }
        catch
        {
            made?.Dispose();
            throw;
        }
        finally
        {
            if (Libc.setns((int)home.DangerousGetHandle(), CLONE_NEWNET) != 0)
            {
                // The thread is stranded in the new namespace: it must not make another one from here.
                throw Errors.Native("setns back to the engine's network namespace", Libc.Errno);
            }
        }
    }

    /// <summary>
    /// A new network namespace with lo up, made on a short-lived thread of its own (so no thread of the
    /// engine ever stays in it), and <paramref name="inside"/>'s result made there too (a netlink socket
    /// bound to it). Throws when the kernel refuses (no CAP_SYS_ADMIN).
    /// </summary>
    public static (SafeFileHandle Namespace, T Inside) MakeOnOwnThread<T>(Func<T> inside)
    {
        (SafeFileHandle, T) result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (Libc.unshare(CLONE_NEWNET) != 0)
                {
                    throw Errors.Native("unshare(CLONE_NEWNET)", Libc.Errno);
                }

                BringLoopbackUp();
                var made = OpenCurrent();
                try
                {
                    result = (made, inside());
                }
                catch
                {
                    made.Dispose();
                    throw;
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        }, maxStackSize: 256 * 1024) { IsBackground = true, Name = "isotest-netns-make" };
        thread.Start();
        thread.Join();
        return failure is null ? result : throw failure;
    }

    /// <summary>Lowers the calling thread to SCHED_IDLE: it runs only when a core would otherwise idle.</summary>
    public static bool LowerThisThreadToIdle()
    {
        int param = 0; // struct sched_param { int sched_priority; }, 0 for SCHED_IDLE
        return Libc.sched_setscheduler(0, SCHED_IDLE, &param) == 0;
    }

    private static void BringLoopbackUp()
    {
        int s = Libc.socket(Libc.AF_INET, SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0);
        if (s < 0)
        {
            throw Errors.Native("socket", Libc.Errno);
        }

        try
        {
            // struct ifreq: the interface name (16 bytes), then a union whose first member is the flags.
            byte* ifreq = stackalloc byte[40];
            new Span<byte>(ifreq, 40).Clear();
            "lo"u8.CopyTo(new Span<byte>(ifreq, 16));
            if (Libc.ioctl(s, SIOCGIFFLAGS, ifreq) != 0)
            {
                throw Errors.Native("ioctl(SIOCGIFFLAGS, lo)", Libc.Errno);
            }

            *(short*)(ifreq + 16) |= IFF_UP | IFF_RUNNING;
            if (Libc.ioctl(s, SIOCSIFFLAGS, ifreq) != 0)
            {
                throw Errors.Native("ioctl(SIOCSIFFLAGS, lo)", Libc.Errno);
            }
        }
        finally
        {
            Libc.close(s);
        }
    }
}
