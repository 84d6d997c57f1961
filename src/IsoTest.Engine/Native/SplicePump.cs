using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>How one direction of a relayed connection ended.</summary>
internal enum PumpEnd
{
    /// <summary>The source sent EOF; everything before it was delivered and the destination was half-closed.</summary>
    Eof,

    /// <summary>A side failed (reset, or shut down by the forwarder's dispose): the connection is broken.</summary>
    Broken,
}

/// <summary>
/// One direction of a published-port connection, copied in the kernel: socket → pipe → socket with splice(2),
/// blocking, on the caller's (dedicated) thread. No byte enters user space and each wake-up moves up to a
/// pipe's worth (1 MiB), which measured faster than the managed receive/send loop (bench/results/findings.md
/// "### portfwd"). A BPF sockmap redirect was measured too and did not beat this (same section).
/// </summary>
internal static unsafe class SplicePump
{
    // 1 MiB is /proc/sys/fs/pipe-max-size's default, so unprivileged callers get it too; past the user's
    // pipe-user-pages-soft the kernel refuses the size and the pipe keeps its 64 KiB: slower, still correct.
    private const int PipeSize = 1 << 20;

    /// <summary>Copies <paramref name="from"/> to <paramref name="to"/> until EOF (then half-closes <paramref name="to"/>) or a failure.</summary>
    public static PumpEnd Run(Socket from, Socket to)
    {
        using var pipe = Pipe.Create();
        var fromHandle = from.SafeHandle;
        var toHandle = to.SafeHandle;
        while (true)
        {
            var n = Splice(fromHandle, pipe.Write, PipeSize);
            if (n == 0)
            {
                break;
            }

            if (n < 0)
            {
                return PumpEnd.Broken;
            }

            while (n > 0)
            {
                var sent = Splice(pipe.Read, toHandle, (nuint)n);
                if (sent <= 0)
                {
                    return PumpEnd.Broken;
                }

                n -= sent;
            }
        }

        try
        {
            to.Shutdown(SocketShutdown.Send);
            return PumpEnd.Eof;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return PumpEnd.Broken;
        }
    }

    /// <summary>.NET leaves its sockets O_NONBLOCK once it used them asynchronously; splice here blocks instead of polling.</summary>
    public static void MakeBlocking(Socket socket)
    {
        var flags = Libc.fcntl(socket.SafeHandle, Libc.F_GETFL, 0);
        if (flags >= 0 && (flags & Libc.O_NONBLOCK) != 0)
        {
            _ = Libc.fcntl(socket.SafeHandle, Libc.F_SETFL, flags & ~Libc.O_NONBLOCK);
        }
    }

    private static nint Splice(SafeHandle source, SafeHandle destination, nuint length)
    {
        while (true)
        {
            var n = Libc.splice(source, null, destination, null, length, Libc.SPLICE_F_MOVE);
            if (n >= 0 || Libc.Errno != Libc.EINTR)
            {
                return n;
            }
        }
    }

    private sealed class Pipe : IDisposable
    {
        private Pipe(SafeFileHandle read, SafeFileHandle write) => (Read, Write) = (read, write);

        public SafeFileHandle Read { get; }

        public SafeFileHandle Write { get; }

        public static Pipe Create()
        {
            int* fds = stackalloc int[2];
            if (Libc.pipe2(fds, Libc.O_CLOEXEC) != 0)
            {
                throw Errors.Native("pipe2", Libc.Errno);
            }

            var pipe = new Pipe(new SafeFileHandle(fds[0], ownsHandle: true), new SafeFileHandle(fds[1], ownsHandle: true));
            _ = Libc.fcntl(pipe.Write, Libc.F_SETPIPE_SZ, PipeSize);  // best effort, see PipeSize
            return pipe;
        }

        public void Dispose()
        {
            Read.Dispose();
            Write.Dispose();
        }
    }
}
