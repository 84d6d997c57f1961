using IsoTest.Engine.Process;
using IsoTest.Engine.RootFs;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Networking;

/// <summary>
/// Rootless, network namespaces made ahead of time for the private containers that join the
/// engine's shared user namespace for their maps (<see cref="Namespaces.SharedUserNamespaces"/>): a namespace owned by
/// that user namespace, which the shim, having joined it, may join (<c>netns 2</c>, native/PROTOCOL.md "Network
/// namespaces made ahead"). Without one the shim's clone makes a fresh namespace (~0.9 ms here against ~0.3 ms) and
/// init brings lo up (~0.1 ms).
/// <para>
/// One <see cref="NetnsPool"/> per user namespace, under its rules (idle priority, nothing made while a container is
/// being created, each namespace for one container): only how a namespace is made differs. The engine cannot make
/// one itself (a threaded process cannot join another user namespace), so a maker process does, the agent binary's
/// <c>netmaker</c> mode, spawned in that user namespace on the first start with its maps.
/// </para>
/// </summary>
internal sealed class UserNetnsPools(EngineLoop loop, string agentPath) : IDisposable
{
    private readonly Dictionary<(string Uid, string Gid), (Maker Maker, NetnsPool Pool)> _pools = [];
    private readonly Creations _creations = new();
    private bool _disposed;
    private int _served;

    /// <summary>Namespaces handed to containers so far.</summary>
    public int Served => Volatile.Read(ref _served);

    /// <summary>Namespaces ready to be handed out, in every pool (for tests).</summary>
    public int ReadyCount
    {
        get
        {
            lock (_pools)
            {
                return _pools.Values.Sum(entry => entry.Pool.ReadyCount);
            }
        }
    }

    /// <summary>Marks a container creation in flight until disposed: no pool makes a namespace meanwhile.</summary>
    public IDisposable Hold() => _creations.Hold();

    /// <summary>
    /// A ready network namespace (lo up) owned by <paramref name="userns"/>, the shared user namespace for
    /// <paramref name="maps"/>, or null when none is ready (the first start with these maps starts the maker); the caller owns it.
    /// </summary>
    public SafeFileHandle? TryTake(IdMaps maps, SafeFileHandle userns)
    {
        NetnsPool pool;
        lock (_pools)
        {
            if (_disposed)
            {
                return null;
            }

            var key = (maps.UidMap, maps.GidMap);
            if (!_pools.TryGetValue(key, out var entry))
            {
                var maker = new Maker();
                maker.Spawn(loop, agentPath, userns);
                entry = (maker, new NetnsPool(make: maker.Make, creations: _creations));
                _pools[key] = entry;
            }

            pool = entry.Pool;
        }

        var ready = pool.TryTake();
        if (ready is not null)
        {
            Interlocked.Increment(ref _served);
        }

        return ready;
    }

    /// <summary>Closes the namespaces nobody took, ends the makers and waits until the loop reaped them.</summary>
    public void Dispose()
    {
        List<(Maker Maker, NetnsPool Pool)> pools;
        lock (_pools)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            pools = [.. _pools.Values];
            _pools.Clear();
        }

        foreach (var (maker, pool) in pools)
        {
            // The pool first: a namespace its thread receives from now on is closed, not kept.
            pool.Dispose();
            maker.Dispose();
        }
    }

    /// <summary>One maker process (<see cref="HelperAgent"/>); its pool's thread asks for one namespace at a time and waits for it.</summary>
    private sealed class Maker : IAgentListener, IDisposable
    {
        private static readonly byte[] s_make = AgentProtocol.Encode(["make"]);
        private readonly Lock _lock = new();
        private readonly HelperAgent _process;
        private TaskCompletionSource<SafeFileHandle?>? _making;
        private bool _gone;

        public Maker() => _process = new HelperAgent(this);

        public void Spawn(EngineLoop loop, string agentPath, SafeFileHandle userns) =>
            _process.Spawn(loop, agentPath, userns, [AgentProtocol.Encode(["netmaker"])]);

        /// <summary>On the pool's thread: one namespace made by the maker, or null once it is gone (the pool then stops).</summary>
        public SafeFileHandle? Make()
        {
            TaskCompletionSource<SafeFileHandle?> making = new(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_lock)
            {
                if (_gone)
                {
                    return null;
                }

                _making = making;
            }

            // Unbounded: the maker answers or exits (EOF, then OnClosed answers null); PDEATHSIG and Dispose end it.
            return _process.TrySend(s_make) ? making.Task.GetAwaiter().GetResult() : null;
        }

        public void OnMessage(string[] fields, SafeFileHandle[] fds)
        {
            lock (_lock)
            {
                if (fields is ["netns"] && fds.Length == 1 && !_gone && _making is { } making)
                {
                    _making = null;
                    making.TrySetResult(fds[0]);
                    return;
                }

                // `error network ...` (the kernel refused) or anything else: stop asking; containers make their own.
                _gone = true;
                _making?.TrySetResult(null);
                _making = null;
            }

            Array.ForEach(fds, fd => fd.Dispose());
        }

        public void OnClosed()
        {
            lock (_lock)
            {
                _gone = true;
                _making?.TrySetResult(null);
                _making = null;
            }
        }

        public void Dispose() => _process.Dispose();
    }
}
