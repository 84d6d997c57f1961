using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>
/// The engine's end of an init agent's SOCK_SEQPACKET control socket: one datagram per message, optionally
/// with descriptors (SCM_RIGHTS). What a datagram says is Process/AgentProtocol's business (native/PROTOCOL.md).
/// Sends happen on any thread (serialised here); receives only on the engine loop's thread.
/// </summary>
internal sealed unsafe class AgentSocket : IDisposable
{
    public const int MaxMessage = 256 * 1024;
    private const int MaxFds = 4;
    private readonly SafeFileHandle _handle;
    private readonly Lock _sendLock = new();

    public AgentSocket(SafeFileHandle handle) => _handle = handle;

    /// <summary>For epoll registration on the engine loop, which also disposes this socket: no race there.</summary>
    public int RawFd => (int)_handle.DangerousGetHandle();

    /// <summary>Sends one message; <paramref name="fds"/> travel with it and stay owned by the caller.</summary>
    /// <exception cref="ObjectDisposedException">The agent is gone and its socket closed.</exception>
    public void Send(byte[] message, ReadOnlySpan<SafeFileHandle> fds = default)
    {
        // Hold the handle for the whole call: once the agent is gone its socket is closed, and its fd number
        // may already belong to another socket (a relayed TCP connection) — writing to the bare number would
        // put this message into that stream. A closed handle throws here instead.
        bool held = false;
        _handle.DangerousAddRef(ref held);
        try
        {
            SendCore(message, fds);
        }
        finally
        {
            if (held)
            {
                _handle.DangerousRelease();
            }
        }
    }

    private void SendCore(byte[] message, ReadOnlySpan<SafeFileHandle> fds)
    {
        if (message.Length > MaxMessage)
        {
            throw new InvalidOperationException($"agent message of {message.Length} bytes exceeds {MaxMessage}");
        }

        int controlLength = fds.Length == 0 ? 0 : Libc.CmsgSpace(sizeof(int) * fds.Length);
        byte* control = stackalloc byte[Math.Max(controlLength, 1)];
        new Span<byte>(control, Math.Max(controlLength, 1)).Clear();
        var refs = new bool[fds.Length];
        try
        {
            for (int i = 0; i < fds.Length; i++)
            {
                fds[i].DangerousAddRef(ref refs[i]);
            }

            if (fds.Length > 0)
            {
                var cmsg = (Libc.CmsgHdr*)control;
                cmsg->Level = Libc.SOL_SOCKET;
                cmsg->Type = Libc.SCM_RIGHTS;
                cmsg->Length = (nuint)Libc.CmsgLen(sizeof(int) * fds.Length);
                int* data = (int*)(control + Libc.CmsgAlign(sizeof(Libc.CmsgHdr)));
                for (int i = 0; i < fds.Length; i++)
                {
                    data[i] = (int)fds[i].DangerousGetHandle();
                }
            }

            fixed (byte* p = message)
            {
                var iov = new Libc.IoVec { Base = p, Length = (nuint)message.Length };
                var msg = new Libc.MsgHdr { Iov = &iov, IovLength = 1, Control = fds.Length > 0 ? control : null, ControlLength = (nuint)controlLength };
                lock (_sendLock)
                {
                    nint n;
                    do
                    {
                        n = Libc.sendmsg(RawFd, &msg, Libc.MSG_NOSIGNAL);
                    }
                    while (n < 0 && Libc.Errno == Libc.EINTR);

                    if (n < 0)
                    {
                        throw Errors.Native("sendmsg to init agent", Libc.Errno);
                    }
                }
            }
        }
        finally
        {
            for (int i = 0; i < refs.Length; i++)
            {
                if (refs[i])
                {
                    fds[i].DangerousRelease();
                }
            }
        }
    }

    /// <summary>
    /// Receives one message without blocking. Returns false when none is queued; <paramref name="closed"/>
    /// is set on EOF (every agent process has exited).
    /// </summary>
    public bool TryReceive(byte[] buffer, out int length, out SafeFileHandle[] fds, out bool closed)
    {
        length = 0;
        fds = [];
        closed = false;
        int controlLength = Libc.CmsgSpace(sizeof(int) * MaxFds);
        byte* control = stackalloc byte[controlLength];
        fixed (byte* p = buffer)
        {
            var iov = new Libc.IoVec { Base = p, Length = (nuint)buffer.Length };
            var msg = new Libc.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlLength };
            nint n;
            int resets = 0;
            while (true)
            {
                n = Libc.recvmsg(RawFd, &msg, Libc.MSG_DONTWAIT | Libc.MSG_CMSG_CLOEXEC);
                int errno = n < 0 ? Libc.Errno : 0;
                // A peer that closed with our messages unread makes the next recv fail once with
                // ECONNRESET, yet what it sent is still queued: read again (native/PROTOCOL.md).
                if (errno == Libc.EINTR || (errno == Libc.ECONNRESET && resets++ < 2))
                {
                    continue;
                }

                break;
            }

            if (n < 0)
            {
                if (Libc.Errno == Libc.EAGAIN)
                {
                    return false;
                }

                closed = true; // the peer is gone
                return false;
            }

            if (n == 0)
            {
                closed = true;
                return false;
            }

            fds = [.. ReadFds(&msg).Select(fd => new SafeFileHandle(fd, ownsHandle: true))];
            length = (int)n;
            return true;
        }
    }

    private static int[] ReadFds(Libc.MsgHdr* msg)
    {
        if (msg->ControlLength < (nuint)sizeof(Libc.CmsgHdr))
        {
            return [];
        }

        var result = new List<int>();
        byte* cursor = (byte*)msg->Control;
        byte* end = cursor + msg->ControlLength;
        while (cursor + sizeof(Libc.CmsgHdr) <= end)
        {
            var cmsg = (Libc.CmsgHdr*)cursor;
            if (cmsg->Length < (nuint)sizeof(Libc.CmsgHdr))
            {
                break;
            }

            if (cmsg->Level == Libc.SOL_SOCKET && cmsg->Type == Libc.SCM_RIGHTS)
            {
                int count = ((int)cmsg->Length - Libc.CmsgAlign(sizeof(Libc.CmsgHdr))) / sizeof(int);
                int* data = (int*)(cursor + Libc.CmsgAlign(sizeof(Libc.CmsgHdr)));
                for (int i = 0; i < count; i++)
                {
                    result.Add(data[i]);
                }
            }

            cursor += Libc.CmsgAlign((int)cmsg->Length);
        }

        return [.. result];
    }

    public void Dispose() => _handle.Dispose();
}
