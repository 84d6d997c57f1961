using IsoTest.Engine.Networking;
using IsoTest.Engine.Process;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.RootFs;

/// <summary>
/// Rootless (the containers join a shared user namespace, with subordinate ranges or without), the host root's
/// mirror (native/rootfs.c, <c>mirror_dir</c>) made ahead of time: a maker (the agent binary's <c>mirror</c> mode, in the shared user namespace and a mount namespace of its
/// own) builds it between starts, and a start attaches that detached tree with one <c>move_mount</c> (spec record
/// <c>mirror</c>, fd 6) instead of making ~30 overlays itself.
/// <para>
/// When it makes them: only while no container of the engine is being created (<see cref="Hold"/>, the same rule as
/// the network namespace pools), keeping <see cref="Depth"/> ready. A maker making while a start runs slows that
/// start even on the other vCPU (its mounts and unmounts take the kernel's mount locks and force expedited RCU grace
/// periods that interrupt every CPU). Rootless host start against root's, in five alternating pairs: 1.51–1.77×
/// (median 1.71×) with the maker making right when a start took a tree, 1.24–1.56× (median 1.41×) held off; with
/// every tree made before the run, 1.15–1.26× (findings.md, 2026-12-03 evening). A start that finds none ready asks
/// for one and waits for it, as a start waited for the tree being made before.
/// </para>
/// <para>
/// Why a mirror at all: inside a user namespace every mount copied from the host's table is locked (MNT_LOCKED,
/// fs/namespace.c <c>lock_mnt_tree</c>), and overlayfs takes each lower layer with <c>clone_private_mount</c>, which
/// refuses a directory with a locked mount below it (<c>has_locked_children</c>): one overlay of <c>/</c>, as root
/// makes, would reveal what those mounts cover. So every directory holding a mount becomes a tmpfs with one overlay
/// per entry, a superblock each (~65 µs to make, an expedited RCU grace period to free, measured here).
/// </para>
/// <para>
/// Same semantics as a mirror built by the container's init: one tree serves exactly one container (its overlays'
/// upper dirs are that container's writable layer, on a staging tmpfs of its layer size), and only containers whose
/// mounts and files land nowhere below a host directory take one (<see cref="Fits"/>: a target there changes the
/// mirror's shape). No tree ready, a different layer size, or a maker that failed: the container's init builds its
/// mirror itself, as before.
/// </para>
/// <para>
/// A tree shows the entries of <c>/</c>, <c>/var</c>, ... as they were when it was made (each entry's content is the
/// live host directory below its overlay, as in any mirror). Made moments before the start that takes it, that is
/// the same snapshot a mirror built at start is; a tree older than <see cref="MaxAge"/> is closed unused and the
/// start waits for a fresh one, so an entry root adds to the host (only root can, they are root's directories)
/// shows up as it does without the maker.
/// </para>
/// </summary>
internal sealed class HostMirrors : IDisposable
{
    // The mirror makes its own /proc, /sys, /dev, /tmp and /run (rootfs.c, mirror_host): targets there never change it.
    private static readonly string[] s_ownTopLevel = ["proc", "sys", "dev", "tmp", "run"];

    /// <summary>
    /// Trees kept ready per maker. Two, not one: in a back-to-back loop the next start can come before the tree asked
    /// for when the last start ended is done (a container that exits at once leaves ~4 ms between starts, a tree takes
    /// ~3), and it then takes the second instead of waiting.
    /// </summary>
    public const int Depth = 2;

    private readonly Dictionary<(string Uid, string Gid, long LayerSize), Maker> _makers = [];
    private readonly EngineLoop _loop;
    private readonly string _agentPath;
    private readonly TimeProvider _time;
    private readonly Creations _creations = new();
    private bool _disposed;

    public HostMirrors(EngineLoop loop, string agentPath, TimeProvider time)
    {
        (_loop, _agentPath, _time) = (loop, agentPath, time);
        _creations.Idle += Refill;
    }

    private int _served;

    /// <summary>Trees handed to containers so far.</summary>
    public int Served => Volatile.Read(ref _served);

    /// <summary>Marks a container creation in flight until disposed (EngineContext.BeginCreate): no maker makes meanwhile.</summary>
    public IDisposable Hold() => _creations.Hold();

    /// <summary>The last creation in flight ended: each maker makes what its stock lacks.</summary>
    private void Refill()
    {
        lock (_makers)
        {
            foreach (var maker in _makers.Values)
            {
                maker.Refill();
            }
        }
    }

    /// <summary>
    /// True when a container whose mounts and files land on <paramref name="targets"/> gets the same mirror as one
    /// with none: every target sits directly in <c>/</c> or under a directory the container mounts itself (rootfs.c
    /// <c>holds_target</c> mirrors any host directory a target lands below, however deep).
    /// </summary>
    public static bool Fits(IEnumerable<string> targets)
    {
        foreach (var target in targets)
        {
            var inner = target.TrimStart('/');
            var slash = inner.IndexOf('/', StringComparison.Ordinal);
            if (slash >= 0 && !s_ownTopLevel.Contains(inner[..slash], StringComparer.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// A mirror for a container with <paramref name="maps"/> (joined through <paramref name="userns"/>) and a writable
    /// layer of <paramref name="layerSize"/> bytes: the oldest one ready, else the one being made (asked for now if none
    /// is), else null (another start waits for that one) and the container's init builds its own. The caller holds a
    /// creation (<see cref="Hold"/>), so the stock is refilled once the starts in flight have ended. The caller owns the
    /// handle (fd 6 of the agent).
    /// </summary>
    public async ValueTask<SafeFileHandle?> TakeAsync(IdMaps maps, SafeFileHandle userns, long layerSize, IReadOnlyList<string> submounts)
    {
        Task<SafeFileHandle?> tree;
        lock (_makers)
        {
            if (_disposed)
            {
                return null;
            }

            var key = (maps.UidMap, maps.GidMap, layerSize);
            if (!_makers.TryGetValue(key, out var maker))
            {
                maker = new Maker(this);
                _makers[key] = maker;
                maker.Spawn(_loop, _agentPath, userns, layerSize, submounts);
            }

            tree = maker.Take();
        }

        SafeFileHandle? result;
        try
        {
            result = tree.IsCompleted ? tree.Result : await tree.WaitAsync(MaxWait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Bounded: a maker that stopped answering must not stall starts; its late tree is closed unread.
            _ = tree.ContinueWith(t => t.Result?.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            return null;
        }

        if (result is not null)
        {
            Interlocked.Increment(ref _served);
        }

        return result;
    }

    /// <summary>How long a start waits for the tree being made (~3 ms on this VM, tens under load) before building its own.</summary>
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(2);

    /// <summary>A ready tree older than this is not handed out (it would show the host's top levels as they were then).</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);

    /// <summary>Ends the makers, waits until the loop reaped them (no zombie outlives the engine) and closes the trees nobody took.</summary>
    public void Dispose()
    {
        List<Maker> makers;
        lock (_makers)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            makers = [.. _makers.Values];
            _makers.Clear();
        }

        _creations.Idle -= Refill;
        // Outside the lock: the loop's OnClosed takes it.
        foreach (var maker in makers)
        {
            maker.Dispose();
        }
    }

    /// <summary>One maker process (<see cref="HelperAgent"/>): up to <see cref="Depth"/> trees ready and one being made.</summary>
    private sealed class Maker : IAgentListener, IDisposable
    {
        private static readonly byte[] s_make = AgentProtocol.Encode(["make"]);
        private readonly HostMirrors _owner;
        private readonly HelperAgent _process;
        private readonly Queue<(SafeFileHandle Tree, long MadeAt)> _ready = new();
        private TaskCompletionSource<SafeFileHandle?>? _making;
        private bool _claimed, _gone;

        public Maker(HostMirrors owner)
        {
            _owner = owner;
            _process = new HelperAgent(this);
        }

        /// <summary>Under the owner's lock: starts the maker with the first start's tree asked for (that start waits for it).</summary>
        public void Spawn(EngineLoop loop, string agentPath, SafeFileHandle userns, long layerSize, IReadOnlyList<string> submounts)
        {
            _making = new(TaskCreationOptions.RunContinuationsAsynchronously);
            _process.Spawn(loop, agentPath, userns,
                [AgentProtocol.Encode(["mirror", layerSize.ToString(System.Globalization.CultureInfo.InvariantCulture), .. submounts]), s_make]);
        }

        /// <summary>
        /// Under the owner's lock: the oldest fresh tree ready; else the one being made, asked for now if none is (at
        /// most one start waits for it); else null. Stale trees are closed unused.
        /// </summary>
        public Task<SafeFileHandle?> Take()
        {
            if (_gone)
            {
                return Task.FromResult<SafeFileHandle?>(null);
            }

            while (_ready.TryDequeue(out var ready))
            {
                if (_owner._time.GetElapsedTime(ready.MadeAt) <= MaxAge)
                {
                    return Task.FromResult<SafeFileHandle?>(ready.Tree);
                }

                ready.Tree.Dispose();
            }

            if (_making is null)
            {
                MakeOne();
            }

            if (_making is { } making && !_claimed)
            {
                _claimed = true;
                return making.Task;
            }

            return Task.FromResult<SafeFileHandle?>(null);
        }

        /// <summary>Under the owner's lock: asks for one more tree while no creation is in flight and the stock is short.</summary>
        public void Refill()
        {
            if (!_gone && !_owner._disposed && _making is null && _ready.Count < Depth && !_owner._creations.InFlight)
            {
                MakeOne();
            }
        }

        /// <summary>Under the owner's lock.</summary>
        private void MakeOne()
        {
            if (_process.TrySend(s_make))
            {
                _making = new(TaskCreationOptions.RunContinuationsAsynchronously);
                _claimed = false;
            }
            else
            {
                _gone = true; // it died; its EOF is on the way
            }
        }

        public void OnMessage(string[] fields, SafeFileHandle[] fds)
        {
            lock (_owner._makers)
            {
                if (fields is ["mirror"] && fds.Length == 1 && !_gone && !_owner._disposed && _making is { } made)
                {
                    _making = null;
                    if (_claimed)
                    {
                        made.TrySetResult(fds[0]); // a start is waiting for it
                    }
                    else
                    {
                        _ready.Enqueue((fds[0], _owner._time.GetTimestamp()));
                    }

                    Refill();
                    return;
                }

                // `error` (a mount the maker could not make) or anything else: stop using it; containers build their own.
                _gone = true;
                _making?.TrySetResult(null);
            }

            Array.ForEach(fds, fd => fd.Dispose());
        }

        public void OnClosed()
        {
            lock (_owner._makers)
            {
                _gone = true;
                _making?.TrySetResult(null);
                CloseReady();
            }
        }

        /// <summary>Under the owner's lock.</summary>
        private void CloseReady()
        {
            while (_ready.TryDequeue(out var ready))
            {
                ready.Tree.Dispose();
            }
        }

        /// <summary>Ends the maker (<see cref="HelperAgent.Dispose"/>), then drops a tree it made that nobody took.</summary>
        public void Dispose()
        {
            _process.Dispose();
            lock (_owner._makers)
            {
                CloseReady();
            }
        }
    }
}
