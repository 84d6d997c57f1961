using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Networking;

/// <summary>
/// Network namespaces made ahead of time. Making one is the costliest step of a container start
/// (~0.6 ms of kernel work here: every protocol registers its per-namespace state and sysctls, then
/// lo is brought up), so the agent is handed a ready one instead of making its own.
/// <para>
/// One thread keeps <see cref="Size"/> ready at SCHED_IDLE: it runs only when a core would otherwise
/// idle, so it never competes with a container being started (a warm pool refilled at normal
/// priority was measured to slow the very starts it fed). Each namespace serves one container and is
/// never reused, so nothing passes from one container to the next.
/// </para>
/// <para>
/// No namespace is made while a container is being created (<see cref="Hold"/>): in a burst the pool
/// runs dry and each container makes its own, as without a pool. Making them in the background then
/// would hold the kernel's network lock (rtnl) at idle priority while the containers' own set-ups
/// wait for it. (1,000 starts at once ran at 315–487/s from run to run with and without the pool:
/// no difference showed through that noise.)
/// </para>
/// <para>
/// Once its own are ready it does the same for the user-defined networks (the <c>more</c> work it is given,
/// <see cref="EngineNetworks.PlugOne"/>): namespaces already on a network, so a member's start makes no veth.
/// </para>
/// Root only: a rootless container's network namespace must belong to its own user namespace, which
/// does not exist before the container does.
/// </summary>
internal sealed class NetnsPool : IDisposable
{
    public const int Size = 2;

    private readonly Lock _lock = new();
    private readonly Queue<SafeFileHandle> _ready = new();
    private readonly AutoResetEvent _wake = new(false); // managed on Linux: no OS handle to dispose
    private bool _stopped;
    private int _creating;

    private readonly Func<SafeFileHandle, bool>? _more;

    /// <param name="more">
    /// More work of the same kind, done once the plain namespaces are ready (<see cref="EngineNetworks.PlugOne"/>: namespaces
    /// ready on a user-defined network): makes one more, given the thread's own namespace; false when none is wanted.
    /// </param>
    public NetnsPool(Func<SafeFileHandle, bool>? more = null)
    {
        _more = more;
        new Thread(Run) { IsBackground = true, Name = "isotest-netns" }.Start();
    }

    /// <summary>Namespaces ready to be handed out (for tests).</summary>
    public int ReadyCount
    {
        get
        {
            lock (_lock)
            {
                return _ready.Count;
            }
        }
    }

    /// <summary>A fresh network namespace with lo up, or null when none is ready; the caller owns it.</summary>
    public SafeFileHandle? TryTake()
    {
        SafeFileHandle? namespaceFd;
        lock (_lock)
        {
            _ready.TryDequeue(out namespaceFd);
        }

        _wake.Set();
        return namespaceFd;
    }

    /// <summary>Something may want namespaces made (a network was created, or a ready member taken).</summary>
    public void Wake() => _wake.Set();

    /// <summary>Marks a container creation in flight until disposed; the pool waits for none to be.</summary>
    public IDisposable Hold()
    {
        Interlocked.Increment(ref _creating);
        return new Creation(this);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _stopped = true;
            while (_ready.TryDequeue(out var namespaceFd))
            {
                namespaceFd.Dispose();
            }
        }

        _wake.Set();
    }

    private bool Stopped
    {
        get
        {
            lock (_lock)
            {
                return _stopped;
            }
        }
    }

    private void Run()
    {
        try
        {
            NetworkNamespace.LowerThisThreadToIdle();
            using var home = NetworkNamespace.OpenCurrent();
            while (true)
            {
                while (Volatile.Read(ref _creating) == 0)
                {
                    if (ReadyCount < Size)
                    {
                        var made = NetworkNamespace.Make(home);
                        lock (_lock)
                        {
                            if (_stopped)
                            {
                                made.Dispose();
                                return;
                            }

                            _ready.Enqueue(made);
                        }
                    }
                    else if (_more is null || Stopped || !_more(home))
                    {
                        break;
                    }
                }

                _wake.WaitOne();
                lock (_lock)
                {
                    if (_stopped)
                    {
                        return;
                    }
                }
            }
        }
        catch (NativeException)
        {
            // The kernel refuses (a restricted environment): containers make their own namespaces,
            // and the agent reports a refusal there with the container it concerns.
        }
        catch (Exception e)
        {
            // A bug here must not take the test process down (an exception on a thread of its own
            // would); containers go on making their own namespaces.
            Console.Error.WriteLine($"isotest: the network namespace pool stopped: {e}");
        }
    }

    private sealed class Creation(NetnsPool pool) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0 && Interlocked.Decrement(ref pool._creating) == 0)
            {
                pool._wake.Set();
            }
        }
    }
}
