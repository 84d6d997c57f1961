namespace IsoTest.Engine.Networking;

/// <summary>
/// The dedicated threads published-port relays block on (<see cref="RelayedConnection"/>), kept parked between
/// connections and shared by every forwarder of the process. Why not a new thread per direction: the scheduler places
/// a new thread behind every runnable one (CFS start debit) while it lets a woken sleeper run soon, so on a loaded
/// machine a fresh thread added about a millisecond to a connection's first answer (connect + 1-byte echo: 1.7 ms
/// against 0.54 ms for the former thread-pool relay at load 34, 2026-12-02). A parked thread wakes like a pool thread.
/// </summary>
internal static class RelayThreads
{
    // Parked threads kept for the next connections; more only live while their connection does. Two per core covers
    // a test's burst of connections without holding hundreds of idle stacks for thousands of containers.
    private static readonly int MaxIdle = Math.Max(4, 2 * Environment.ProcessorCount);

    // The pump's frames are small; the default 1.5 MiB reservation per thread would only cost address space.
    private const int StackSize = 256 * 1024;

    private static readonly Lock Gate = new();
    private static readonly Stack<Worker> Idle = new();

    /// <summary>Runs <paramref name="work"/> on a parked relay thread, or on a new one when none is idle.</summary>
    public static void Run(Action work)
    {
        Worker? worker = null;
        lock (Gate)
        {
            if (Idle.Count > 0)
            {
                worker = Idle.Pop();
            }
        }

        if (worker is null)
        {
            worker = new Worker();
            worker.Start(work);
        }
        else
        {
            worker.Hand(work);
        }
    }

    /// <summary>Relay threads parked now (for tests).</summary>
    internal static int IdleCount
    {
        get
        {
            lock (Gate)
            {
                return Idle.Count;
            }
        }
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim _wake = new(0);
        private Action? _work;

        public void Start(Action first)
        {
            _work = first;
            new Thread(Loop, StackSize) { IsBackground = true, Name = "isotest relay" }.UnsafeStart();
        }

        public void Hand(Action work)
        {
            Volatile.Write(ref _work, work);
            _wake.Release();
        }

        private void Loop()
        {
            while (true)
            {
                var work = Interlocked.Exchange(ref _work, null)!;
                work();   // RelayedConnection.Pump catches what it expects; anything else is a bug and ends the process as on any thread
                lock (Gate)
                {
                    if (Idle.Count >= MaxIdle)
                    {
                        return;
                    }

                    Idle.Push(this);
                }

                _wake.Wait();
            }
        }
    }
}
