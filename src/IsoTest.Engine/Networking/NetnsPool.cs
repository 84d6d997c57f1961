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
/// <para>
/// Root makes them on this thread. Rootless, a container's network namespace must belong to its user namespace, so
/// only a container joining the engine's shared user namespace for its maps (subordinate ranges) can take one made
/// ahead: <see cref="UserNetnsPools"/> gives each such user namespace a pool whose namespaces a maker process in it
/// makes (<c>make</c>), under the same rules. A rootless container with a user namespace of its own (no ranges, or a
/// member of a user-defined network) still makes its own.
/// </para>
/// </summary>
internal sealed class NetnsPool : IDisposable
{
    public const int Size = 2;

    private readonly Lock _lock = new();
    private readonly Queue<SafeFileHandle> _ready = new();
    private readonly AutoResetEvent _wake = new(false); // managed on Linux: no OS handle to dispose
    private readonly Creations _creations;
    private readonly Func<SafeFileHandle?>? _make;
    private bool _stopped;

    private readonly Func<SafeFileHandle, bool>? _more;

    /// <param name="more">
    /// More work of the same kind, done once the plain namespaces are ready (<see cref="EngineNetworks.PlugOne"/>: namespaces
    /// ready on a user-defined network): makes one more, given the thread's own namespace; false when none is wanted.
    /// </param>
    /// <param name="make">
    /// Makes one namespace (lo up) elsewhere, blocking this pool's thread until it is made, or null when it no longer
    /// can (the pool then stops); null: made on the pool's thread in this process's user namespace (root).
    /// </param>
    /// <param name="creations">The creations in flight this pool waits out; null: its own (<see cref="Hold"/>).</param>
    public NetnsPool(Func<SafeFileHandle, bool>? more = null, Func<SafeFileHandle?>? make = null, Creations? creations = null)
    {
        _more = more;
        _make = make;
        _creations = creations ?? new Creations();
        _creations.Idle += Wake;
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
    public IDisposable Hold() => _creations.Hold();

    public void Dispose()
    {
        _creations.Idle -= Wake;
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
            var make = _make ?? (() => NetworkNamespace.Make(home));
            while (true)
            {
                while (!_creations.InFlight)
                {
                    if (ReadyCount < Size)
                    {
                        if (make() is not { } made)
                        {
                            return; // the maker is gone: containers make their own
                        }

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
}

/// <summary>
/// Container creations in flight, for the pools that make no namespace meanwhile (<see cref="NetnsPool"/>: why). One
/// per root pool; one shared by every rootless pool of an engine, so a pool made during a creation waits it out too.
/// </summary>
internal sealed class Creations
{
    private int _inFlight;

    /// <summary>Raised when the last creation in flight ends.</summary>
    public event Action? Idle;

    public bool InFlight => Volatile.Read(ref _inFlight) > 0;

    /// <summary>Marks a container creation in flight until disposed.</summary>
    public IDisposable Hold()
    {
        Interlocked.Increment(ref _inFlight);
        return new Creation(this);
    }

    private sealed class Creation(Creations creations) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0 && Interlocked.Decrement(ref creations._inFlight) == 0)
            {
                creations.Idle?.Invoke();
            }
        }
    }
}
