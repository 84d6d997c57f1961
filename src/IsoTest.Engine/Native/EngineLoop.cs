using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>Receives what an init agent says. Called on the engine loop's thread: return quickly.</summary>
internal interface IAgentListener
{
    /// <summary>One message; the listener owns <paramref name="fds"/>.</summary>
    void OnMessage(string[] fields, SafeFileHandle[] fds);

    /// <summary>The control socket reached EOF and the shim was reaped: every agent process is gone.</summary>
    void OnClosed();
}

/// <summary>
/// The engine's one long-lived thread. It spawns every init agent (PR_SET_PDEATHSIG follows the
/// thread that forked, and thread-pool threads exit when idle, so spawning from a pool thread would
/// kill containers at random) and it reads every agent's control socket through one epoll set, so a
/// thousand containers cost one thread, not a thousand.
/// </summary>
internal sealed unsafe class EngineLoop
{
    private static readonly Lazy<EngineLoop> SharedLoop = new(() => new EngineLoop());
    private readonly int _epoll;
    private readonly int _wake;
    private readonly ConcurrentQueue<Action> _work = new();
    private readonly Dictionary<ulong, Registration> _registrations = [];
    private readonly byte[] _receiveBuffer = new byte[AgentSocket.MaxMessage];
    private ulong _nextKey = 1;

    private EngineLoop()
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

        Add(_wake, 0);
        var thread = new Thread(Run) { IsBackground = true, Name = "isotest-engine" };
        thread.Start();
    }

    public static EngineLoop Shared => SharedLoop.Value;

    /// <summary>
    /// Spawns the init agent with stdin=/dev/null, stdout, stderr and the control socket on fds 0–3,
    /// starts listening on <paramref name="control"/> and sends it <paramref name="firstMessages"/> (the
    /// spec, maybe `start`). Sending them here, not after the caller resumes, keeps the thread-pool hop
    /// that resumes the caller off the critical path: the agent is already at work while it happens.
    /// The loop closes the agent's ends once spawned, so an agent that dies early is seen (EOF).
    /// Returns the shim's pid.
    /// </summary>
    public Task<int> SpawnAsync(string agentPath, SafeFileHandle devNull, SafeFileHandle[] agentEnds, AgentSocket control, IAgentListener listener, IReadOnlyList<byte[]> firstMessages)
    {
        var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            int pid;
            try
            {
                pid = Spawn(agentPath, [devNull, .. agentEnds]);
                foreach (var end in agentEnds)
                {
                    end.Dispose();
                }

                var key = _nextKey++;
                _registrations[key] = new Registration(control, listener, pid);
                Add(control.RawFd, key);
            }
            catch (Exception e)
            {
                done.SetException(e);
                return;
            }

            try
            {
                foreach (var message in firstMessages)
                {
                    control.Send(message);
                }
            }
            catch (Exception e) when (e is NativeException or ObjectDisposedException)
            {
                // The agent is already gone: its EOF reaches the listener, which says why.
            }

            done.SetResult(pid);
        });
        return done.Task;
    }

    private void Post(Action work)
    {
        _work.Enqueue(work);
        ulong one = 1;
        Libc.write(_wake, &one, sizeof(ulong));
    }

    private static int Spawn(string path, SafeFileHandle[] fds)
    {
        // Large enough for glibc's posix_spawn_file_actions_t (80 bytes on x86_64).
        byte* actions = stackalloc byte[256];
        Libc.posix_spawn_file_actions_init(actions);
        var refs = new bool[fds.Length];
        var pathBytes = Marshal.StringToCoTaskMemUTF8(path);
        var argv = stackalloc byte*[2] { (byte*)pathBytes, null };
        var envp = stackalloc byte*[1] { null };
        try
        {
            for (int i = 0; i < fds.Length; i++)
            {
                fds[i].DangerousAddRef(ref refs[i]);
                int rc = Libc.posix_spawn_file_actions_adddup2(actions, (int)fds[i].DangerousGetHandle(), i);
                if (rc != 0)
                {
                    throw Errors.Native("posix_spawn_file_actions_adddup2", rc);
                }
            }

            int pid;
            int err = Libc.posix_spawn(&pid, (byte*)pathBytes, actions, null, argv, envp);
            if (err != 0)
            {
                throw Errors.Native($"spawning the init agent {path}", err);
            }

            return pid;
        }
        finally
        {
            Libc.posix_spawn_file_actions_destroy(actions);
            Marshal.FreeCoTaskMem(pathBytes);
            for (int i = 0; i < refs.Length; i++)
            {
                if (refs[i])
                {
                    fds[i].DangerousRelease();
                }
            }
        }
    }

    private void Add(int fd, ulong key)
    {
        var ev = new Libc.EpollEventPacked { Events = Libc.EPOLLIN | Libc.EPOLLRDHUP, Data = key };
        if (Libc.epoll_ctl(_epoll, Libc.EPOLL_CTL_ADD, fd, &ev) != 0)
        {
            throw Errors.Native("epoll_ctl", Libc.Errno);
        }
    }

    private void Run()
    {
        const int MaxEvents = 64;
        var events = stackalloc Libc.EpollEventPacked[MaxEvents];
        while (true)
        {
            int n = Libc.epoll_wait(_epoll, events, MaxEvents, -1);
            if (n < 0)
            {
                continue; // EINTR
            }

            for (int i = 0; i < n; i++)
            {
                ulong key = events[i].Data;
                if (key == 0)
                {
                    ulong count;
                    Libc.read(_wake, &count, sizeof(ulong));
                    while (_work.TryDequeue(out var work))
                    {
                        work();
                    }
                }
                else if (_registrations.TryGetValue(key, out var registration))
                {
                    Drain(key, registration);
                }
            }
        }
    }

    private void Drain(ulong key, Registration registration)
    {
        bool closed;
        while (registration.Control.TryReceive(_receiveBuffer, out var fields, out var rawFds, out closed))
        {
            var fds = rawFds.Select(fd => new SafeFileHandle(fd, ownsHandle: true)).ToArray();
            try
            {
                registration.Listener.OnMessage(fields, fds);
            }
            catch (Exception e)
            {
                // A listener bug must not take the loop (and every container) down with it.
                Console.Error.WriteLine($"isotest: agent message handler failed: {e}");
            }
        }

        if (!closed)
        {
            return;
        }

        Libc.epoll_ctl(_epoll, Libc.EPOLL_CTL_DEL, registration.Control.RawFd, null);
        _registrations.Remove(key);

        // EOF means the shim closed its last descriptor while exiting: reaping it cannot block for long.
        int status;
        while (Libc.waitpid(registration.ShimPid, &status, 0) < 0 && Libc.Errno == Libc.EINTR)
        {
        }

        try
        {
            registration.Listener.OnClosed();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"isotest: agent close handler failed: {e}");
        }
    }

    private sealed record Registration(AgentSocket Control, IAgentListener Listener, int ShimPid);


}
