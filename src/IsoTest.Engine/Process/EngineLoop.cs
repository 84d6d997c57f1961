using System.Collections.Concurrent;
using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Process;

/// <summary>
/// The engine's one long-lived thread. It spawns every init agent through the <see cref="AgentSpawner"/> it
/// started (PR_SET_PDEATHSIG follows the thread that forked, and thread-pool threads exit when idle, so a spawner
/// started from a pool thread would kill containers at random) and it reads every agent's control socket through
/// one epoll set, so a thousand containers cost one thread, not a thousand.
/// </summary>
internal sealed class EngineLoop
{
    private static readonly Lazy<EngineLoop> SharedLoop = new(() => new EngineLoop());
    private readonly Poller _poller = new();
    private readonly ConcurrentQueue<Action> _work = new();
    private readonly Dictionary<ulong, Registration> _registrations = [];
    // Concurrent: the loop adds spawners, error paths on other threads ask for a spawner's pid.
    private readonly ConcurrentDictionary<string, AgentSpawner> _spawners = new(StringComparer.Ordinal);
    private readonly byte[] _receiveBuffer = new byte[AgentSocket.MaxMessage];
    private ulong _nextKey = Poller.WakeKey + 1;

    private EngineLoop()
    {
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
                _registrations[key] = new Registration(control, listener);
                _poller.Add(control, key);
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

    private int Spawn(string agentPath, SafeFileHandle[] fds)
    {
        if (!_spawners.TryGetValue(agentPath, out var spawner))
        {
            _spawners[agentPath] = spawner = new AgentSpawner(agentPath);
        }

        return spawner.Spawn(fds);
    }

    /// <summary>The pid of the spawner that forks <paramref name="agentPath"/>'s agents; 0 before its first spawn.</summary>
    public int SpawnerPid(string agentPath) => _spawners.TryGetValue(agentPath, out var spawner) ? spawner.Pid : 0;

    /// <summary>
    /// Ends the spawner of <paramref name="agentPath"/> (it exits at EOF and is reaped). A spawner otherwise lives as
    /// long as this process; this is for an engine given an agent path of its own, as a test does, that is done with it.
    /// </summary>
    public Task RetireSpawnerAsync(string agentPath)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            if (_spawners.TryRemove(agentPath, out var spawner))
            {
                spawner.Dispose();
            }

            done.SetResult();
        });
        return done.Task;
    }

    private void Post(Action work)
    {
        _work.Enqueue(work);
        _poller.Wake();
    }

    private void Run()
    {
        Span<ulong> ready = stackalloc ulong[64];
        while (true)
        {
            int n = _poller.Wait(ready);
            for (int i = 0; i < n; i++)
            {
                if (ready[i] == Poller.WakeKey)
                {
                    while (_work.TryDequeue(out var work))
                    {
                        work();
                    }
                }
                else if (_registrations.TryGetValue(ready[i], out var registration))
                {
                    Drain(ready[i], registration);
                }
            }
        }
    }

    private void Drain(ulong key, Registration registration)
    {
        bool closed;
        while (registration.Control.TryReceive(_receiveBuffer, out var length, out var fds, out closed))
        {
            try
            {
                registration.Listener.OnMessage(AgentProtocol.Decode(_receiveBuffer.AsSpan(0, length)), fds);
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

        _poller.Remove(registration.Control);
        _registrations.Remove(key);

        // EOF means the shim closed its last descriptor while exiting; the spawner, its parent, reaps it.
        try
        {
            registration.Listener.OnClosed();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"isotest: agent close handler failed: {e}");
        }
    }

    private sealed record Registration(AgentSocket Control, IAgentListener Listener);
}
