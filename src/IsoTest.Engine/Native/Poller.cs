namespace IsoTest.Engine.Native;

/// <summary>
/// One epoll set plus a wake-up eventfd, for the engine loop (Process/EngineLoop): it waits for any agent
/// socket to become readable, or for <see cref="Wake"/>. Key 0 is the wake-up; sockets get keys above 0.
/// epoll_event is packed on x86_64 and naturally aligned elsewhere, so both layouts are spelled out.
/// </summary>
internal sealed unsafe class Poller
{
    public const ulong WakeKey = 0;
    private readonly int _epoll;
    private readonly int _wake;

    public Poller()
    {
        _epoll = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        if (_epoll < 0)
        {
            throw Errors.Native("epoll_create1", Libc.Errno);
        }

        _wake = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (_wake < 0)
        {
            throw Errors.Native("eventfd", Libc.Errno);
        }

        Add(_wake, WakeKey);
    }

    /// <summary>Watches <paramref name="socket"/> for messages and EOF under <paramref name="key"/> (above 0).</summary>
    public void Add(AgentSocket socket, ulong key) => Add(socket.RawFd, key);

    /// <summary>Stops watching <paramref name="socket"/>; call before disposing it.</summary>
    public void Remove(AgentSocket socket) => Libc.epoll_ctl(_epoll, Libc.EPOLL_CTL_DEL, socket.RawFd, null);

    /// <summary>Makes <see cref="Wait"/> return <see cref="WakeKey"/>; any thread.</summary>
    public void Wake()
    {
        ulong one = 1;
        Libc.write(_wake, &one, sizeof(ulong));
    }

    /// <summary>Blocks until something is ready; fills <paramref name="keys"/> and returns how many. A wake-up is consumed here.</summary>
    public int Wait(Span<ulong> keys)
    {
        int max = Math.Min(keys.Length, 64);
        int stride = Libc.EpollEventIsPacked ? sizeof(Libc.EpollEventPacked) : sizeof(Libc.EpollEventAligned);
        byte* events = stackalloc byte[64 * sizeof(Libc.EpollEventAligned)];
        int n;
        while ((n = Libc.epoll_wait(_epoll, events, max, -1)) < 0)
        {
            // EINTR: wait again.
        }

        for (int i = 0; i < n; i++)
        {
            keys[i] = Libc.EpollEventIsPacked
                ? ((Libc.EpollEventPacked*)(events + (i * stride)))->Data
                : ((Libc.EpollEventAligned*)(events + (i * stride)))->Data;
            if (keys[i] == WakeKey)
            {
                ulong count;
                Libc.read(_wake, &count, sizeof(ulong));
            }
        }

        return n;
    }

    private void Add(int fd, ulong key)
    {
        int rc;
        if (Libc.EpollEventIsPacked)
        {
            var ev = new Libc.EpollEventPacked { Events = Libc.EPOLLIN | Libc.EPOLLRDHUP, Data = key };
            rc = Libc.epoll_ctl(_epoll, Libc.EPOLL_CTL_ADD, fd, &ev);
        }
        else
        {
            var ev = new Libc.EpollEventAligned { Events = Libc.EPOLLIN | Libc.EPOLLRDHUP, Data = key };
            rc = Libc.epoll_ctl(_epoll, Libc.EPOLL_CTL_ADD, fd, &ev);
        }

        if (rc != 0)
        {
            throw Errors.Native("epoll_ctl", Libc.Errno);
        }
    }
}
