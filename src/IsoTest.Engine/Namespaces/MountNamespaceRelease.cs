using System.Collections.Concurrent;
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
    private static readonly BlockingCollection<SafeFileHandle> s_queue = [];
    private static readonly ManualResetEventSlim s_idle = new(initialState: true);
    private static readonly Lock s_lock = new();
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
        lock (s_lock)
        {
            s_pending++;
            s_idle.Reset();
        }

        _ = s_worker.Value;
        s_queue.Add(mountNamespace);
    }

    /// <summary>Completes once every namespace queued so far is closed (or after <paramref name="timeout"/>).</summary>
    public static Task DrainAsync(TimeSpan timeout) => s_idle.IsSet ? Task.CompletedTask : Task.Run(() => s_idle.Wait(timeout));

    private static void Run()
    {
        foreach (var mountNamespace in s_queue.GetConsumingEnumerable())
        {
            mountNamespace.Dispose(); // the teardown runs here, in this thread's close()
            lock (s_lock)
            {
                if (--s_pending == 0)
                {
                    s_idle.Set();
                }
            }
        }
    }
}
