using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>Descriptor helpers. Every descriptor the engine makes is O_CLOEXEC, so nothing leaks into other children.</summary>
internal static unsafe class Fd
{
    /// <summary>A connected pair of AF_UNIX sockets (close-on-exec).</summary>
    public static (SafeFileHandle A, SafeFileHandle B) SocketPair(int type)
    {
        int* sv = stackalloc int[2];
        if (Libc.socketpair(Libc.AF_UNIX, type | Libc.SOCK_CLOEXEC, 0, sv) != 0)
        {
            throw Errors.Native("socketpair", Libc.Errno);
        }

        return (new SafeFileHandle(sv[0], ownsHandle: true), new SafeFileHandle(sv[1], ownsHandle: true));
    }

    /// <summary>A connected pair of stream sockets (a container's stdout or stderr, an exec's).</summary>
    public static (SafeFileHandle A, SafeFileHandle B) StreamPair() => SocketPair(Libc.SOCK_STREAM);

    /// <summary>A connected pair of SOCK_SEQPACKET sockets (an agent's control socket: message boundaries kept).</summary>
    public static (SafeFileHandle A, SafeFileHandle B) SeqPacketPair() => SocketPair(Libc.SOCK_SEQPACKET);

    /// <summary>Opens /dev/null read-write.</summary>
    public static SafeFileHandle OpenDevNull()
    {
        var fd = Libc.open("/dev/null", Libc.O_RDWR | Libc.O_CLOEXEC, 0);
        return fd < 0 ? throw Errors.Native("open /dev/null", Libc.Errno) : new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>A second descriptor for what <paramref name="handle"/> refers to (close-on-exec), for a spawn that closes what it passes.</summary>
    public static SafeFileHandle Duplicate(SafeFileHandle handle)
    {
        var fd = Libc.fcntl((int)handle.DangerousGetHandle(), Libc.F_DUPFD_CLOEXEC, 0);
        GC.KeepAlive(handle);
        return fd < 0 ? throw Errors.Native("fcntl F_DUPFD_CLOEXEC", Libc.Errno) : new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Hands a stream socket descriptor over to a .NET <see cref="Socket"/> (epoll-driven async I/O).</summary>
    public static Socket ToSocket(SafeFileHandle handle)
    {
        var fd = handle.DangerousGetHandle();
        handle.SetHandleAsInvalid(); // ownership moves to the SafeSocketHandle
        return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
    }
}
