using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Namespaces;

/// <summary>
/// Closes the mount namespaces of containers that ended (the shim sends each with <c>reaped</c>, native/PROTOCOL.md) on
/// one background thread, off the path of the stop and of the next start. The last reference tears every mount of the
/// container down, and each overlay's teardown waits for an expedited RCU grace period: ~45 of them for a rootless host
/// root (3 ms when this VM is quiet, tens of ms under load), which init's exit, and so the container's removal, waited
/// for before. The processes and the cgroup are gone by then; only the namespace's memory outlives the container, for
/// as long as this queue takes. An engine's dispose drains it (<see cref="DrainAsync"/>), so nothing outlives the engine.
/// </summary>
internal static class MountNamespaceRelease
{
    // A plain queue under a monitor, not a BlockingCollection: its Take spins (35 rounds, most of them sched_yield)
    // each time the queue runs dry, which is after every container. perf over 200 rootless cycles counted 14,000 such
    // yields on this thread alone, CPU taken from the next start on a 2-core host. Monitor.Wait sleeps at once.
    private static readonly Queue<SafeFileHandle> s_queue = [];
    private static readonly object s_lock = new(); // an object, not a Lock: Monitor.Wait/Pulse need a monitor
    private static readonly Lazy<Thread> s_worker = new(() =>
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "isotest mount namespace release" };
        thread.Start();
        return thread;
    });

    private static int s_pending;

    /// <summary>Queues <paramref name="mountNamespace"/> to be closed; this class owns it from here.</summary>
    public static void Release(SafeFileHandle mountNamespace)
    {
        _ = s_worker.Value;
        lock (s_lock)
        {
            s_pending++;
            s_queue.Enqueue(mountNamespace);
            Monitor.PulseAll(s_lock); // All, not Pulse: the worker and DrainAsync's waiters share this monitor
        }
    }

    /// <summary>Completes once every namespace queued so far is closed (or after <paramref name="timeout"/>).</summary>
    public static Task DrainAsync(TimeSpan timeout)
    {
        lock (s_lock)
        {
            if (s_pending == 0)
            {
                return Task.CompletedTask;
            }
        }

        return Task.Run(() =>
        {
            var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
            lock (s_lock)
            {
                // The worker pulses after each close; a waiter re-checks until the queue is empty or time is up.
                while (s_pending > 0 && Environment.TickCount64 < deadline)
                {
                    Monitor.Wait(s_lock, TimeSpan.FromMilliseconds(Math.Max(1, deadline - Environment.TickCount64)));
                }
            }
        });
    }

    private static void Run()
    {
        while (true)
        {
            SafeFileHandle mountNamespace;
            lock (s_lock)
            {
                while (s_queue.Count == 0)
                {
                    Monitor.Wait(s_lock);
                }

                mountNamespace = s_queue.Dequeue();
            }

            mountNamespace.Dispose(); // the teardown runs here, in this thread's close(), outside the lock
            lock (s_lock)
            {
                s_pending--;
                Monitor.PulseAll(s_lock); // wakes DrainAsync's waiters
            }
        }
    }
}
