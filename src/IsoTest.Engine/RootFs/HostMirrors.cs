using IsoTest.Engine.Namespaces;
using IsoTest.Engine.Networking;
using IsoTest.Engine.Process;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.RootFs;

/// <summary>
/// Rootless (the containers join a shared user namespace, with subordinate ranges or without), the host root's
/// mirror (native/rootfs.c, <c>mirror_dir</c>) made ahead of time: a maker (the agent binary's <c>mirror</c> mode, in the
/// shared user namespace) builds it between starts, each in a mount namespace of its own, and a start's init joins that
/// namespace (spec record <c>mirror STAGE</c>, fd 6) instead of copying the engine's and making its overlays itself.
/// <para>
/// When it makes them: only while no container of the engine is being created (<see cref="Hold"/>, the same rule as
/// the network namespace pools), keeping <see cref="Depth"/> ready. A maker making while a start runs slows that
/// start even on the other vCPU (its mounts take the kernel's mount locks). Rootless host start against root's, in
/// five alternating pairs: 1.51–1.77× (median 1.71×) with the maker making right when a start took a tree, 1.24–1.56×
/// (median 1.41×) held off (findings.md, 2026-12-03 evening). A start that finds none ready asks for one and waits
/// for it, as a start waited for a mirror being made before.
/// </para>
/// <para>
/// The maker never unmounts (each namespace it made goes with the container that joined it, released off the start
/// path by <see cref="Namespaces.MountNamespaceRelease"/>): an unmount ends in an expedited RCU grace period that the
/// next start's own unmount waits behind, and a maker that kept its copy of each tree to unmount eight at a time
/// freed 8 × ~30 overlays in one 14–50 ms burst, inside one start in eight (findings.md, "one start in eight").
/// </para>
/// <para>
/// Why a mirror at all: inside a user namespace every mount copied from the host's table is locked (MNT_LOCKED,
/// fs/namespace.c <c>lock_mnt_tree</c>), and overlayfs takes each lower layer with <c>clone_private_mount</c>, which
/// refuses a directory with a locked mount below it (<c>has_locked_children</c>): one overlay of <c>/</c>, as root
/// makes, would reveal what those mounts cover. So every directory holding a mount becomes a tmpfs with one overlay
/// per entry, a superblock each (~65 µs to make, an expedited RCU grace period to free, measured here).
/// </para>
/// <para>
/// Same semantics as a mirror built by the container's init: one namespace serves exactly one container (its
/// overlays' upper dirs are that container's writable layer, on a staging tmpfs of its layer size), and only
/// containers whose mounts and files land nowhere below a host directory take one (<see cref="Fits"/>: a target there
/// changes the mirror's shape). The namespace's copy of the host's mount table is the maker's, taken when it started:
/// a container whose bind or file sources lie at a mount point made or removed since then does not take one
/// (<see cref="SourcesFit"/>), and the maker is replaced. No namespace ready, a different layer size, or a maker that
/// failed: the container's init builds its mirror itself, as before.
/// </para>
/// <para>
/// A namespace shows the entries of <c>/</c>, <c>/var</c>, ... as they were when it was made (each entry's content is
/// the live host directory below its overlay, as in any mirror). Made moments before the start that takes it, that
/// is the same snapshot a mirror built at start is; one older than <see cref="MaxAge"/> is released unused and the
/// start waits for a fresh one, so an entry root adds to the host (only root can, they are root's directories)
/// shows up as it does without the maker.
/// </para>
/// </summary>
internal sealed class HostMirrors : IDisposable
{
    // The mirror makes its own /proc, /sys, /dev, /tmp and /run (rootfs.c, mirror_host): targets there never change it.
    private static readonly string[] s_ownTopLevel = ["proc", "sys", "dev", "tmp", "run"];

    /// <summary>
    /// Namespaces kept ready per maker. Two, not one: in a back-to-back loop the next start can come before the one asked
    /// for when the last start ended is done (a container that exits at once leaves ~4 ms between starts, one takes
    /// ~3), and it then takes the second instead of waiting.
    /// </summary>
    public const int Depth = 2;

    private readonly Dictionary<(string Uid, string Gid, long LayerSize), Maker> _makers = [];
    private readonly EngineLoop _loop;
    private readonly string _agentPath;
    private readonly TimeProvider _time;
    private readonly Creations _creations = new();
    private readonly List<Task> _retiring = []; // under _makers' lock: makers replaced (SourcesFit), ending off the start that replaced them
    private bool _disposed;

    /// <param name="loop">The loop that runs the makers.</param>
    /// <param name="agentPath">The agent binary.</param>
    /// <param name="time">Ages the namespaces ready (<see cref="MaxAge"/>).</param>
    /// <param name="stage">
    /// Where each maker mounts its staging tmpfs in the namespaces it makes: a directory of the engine's own (made on
    /// first use), so it covers no path a container binds from (a staging on /tmp, as init's own, would cover them).
    /// </param>
    /// <param name="mountTable">The engine's mount table now (<see cref="HostMountPlan.MountsOfThisProcess"/>; tests pass their own).</param>
    public HostMirrors(EngineLoop loop, string agentPath, TimeProvider time, string stage, Func<IReadOnlySet<string>?>? mountTable = null)
    {
        (_loop, _agentPath, _time, Stage) = (loop, agentPath, time, stage);
        _mountTable = mountTable ?? HostMountPlan.MountsOfThisProcess;
        _creations.Idle += Refill;
    }

    private readonly Func<IReadOnlySet<string>?> _mountTable;

    /// <summary>The staging tmpfs's mount point in every namespace made (spec record <c>mirror</c>).</summary>
    public string Stage { get; }

    private int _served;

    /// <summary>Namespaces handed to containers so far.</summary>
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
    /// True when host paths a container opens before it leaves the host's tree (its bind and copy-on-write sources,
    /// the files it copies in) look the same in a namespace whose host table is older by <paramref name="changedPoints"/>
    /// (mount points made or removed since, <see cref="HostMountPlan.ChangedPoints"/>): none is at, below or above one
    /// of them (a bind is recursive), and none is below <paramref name="stage"/>, which the staging covers there.
    /// </summary>
    public static bool SourcesFit(IReadOnlyCollection<string> sources, IEnumerable<string> changedPoints, string stage)
    {
        if (sources.Count == 0)
        {
            return true;
        }

        return !sources.Any(s => Related(s, stage)) && !changedPoints.Any(point => sources.Any(s => Related(s, point) || Related(point, s)));

        // path is dir or lies below it
        static bool Related(string path, string dir) =>
            path == dir || path.StartsWith(dir.EndsWith('/') ? dir : dir + "/", StringComparison.Ordinal);
    }

    /// <summary>
    /// A mirror for a container with <paramref name="maps"/> (joined through <paramref name="userns"/>) and a writable
    /// layer of <paramref name="layerSize"/> bytes: the oldest one ready, else the one being made (asked for now if none
    /// is), else null (another start waits for that one) and the container's init builds its own. Null too when one of
    /// <paramref name="sources"/> (full host paths) does not fit the maker's copy of the host table (<see cref="SourcesFit"/>):
    /// that maker is replaced, so the next start gets a fresh one. The caller holds a creation (<see cref="Hold"/>), so
    /// the stock is refilled once the starts in flight have ended. The caller owns the handle (fd 6 of the agent): a
    /// mount namespace.
    /// </summary>
    public async ValueTask<SafeFileHandle?> TakeAsync(IdMaps maps, SafeFileHandle userns, long layerSize, IReadOnlyList<string> submounts, IReadOnlyList<string> readOnlyTrees, IReadOnlyCollection<string> sources)
    {
        // Read before the lock (the loop's OnMessage takes it), and only for a container that has sources.
        var now = sources.Count > 0 ? _mountTable() : null;
        Task<SafeFileHandle?> made;
        lock (_makers)
        {
            if (_disposed)
            {
                return null;
            }

            var key = (maps.UidMap, maps.GidMap, layerSize);
            if (_makers.TryGetValue(key, out var existing) && sources.Count > 0
                && (existing.Mounts is not { } then || now is null || !SourcesFit(sources, HostMountPlan.ChangedPoints(then, now), Stage)))
            {
                // Its namespaces show another host table at a source: this container builds its own mirror; a fresh
                // maker (a fresh copy of the table) serves the next ones. Ending this one waits for the loop to reap
                // it: off this start's path, and Dispose waits for it.
                _makers.Remove(key);
                _retiring.Add(Task.Run(existing.Dispose));
                return null;
            }

            if (existing is null)
            {
                existing = new Maker(this);
                _makers[key] = existing;
                existing.Spawn(_loop, _agentPath, userns, layerSize, submounts, readOnlyTrees, Stage);
            }

            made = existing.Take();
        }

        SafeFileHandle? result;
        try
        {
            result = made.IsCompleted ? made.Result : await made.WaitAsync(MaxWait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Bounded: a maker that stopped answering must not stall starts; its late namespace is released unused.
            _ = made.ContinueWith(t => Release(t.Result), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            return null;
        }

        if (result is not null)
        {
            Interlocked.Increment(ref _served);
        }

        return result;
    }

    /// <summary>How long a start waits for the namespace being made (~3 ms on this VM, tens under load) before building its own.</summary>
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(2);

    /// <summary>A ready namespace older than this is not handed out (it would show the host's top levels as they were then).</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A namespace nobody will join goes the way an ended container's does: its teardown (its overlays, an expedited
    /// RCU grace period each) runs on the release thread, not in the start or dispose that drops it.
    /// </summary>
    private static void Release(SafeFileHandle? mountNamespace)
    {
        if (mountNamespace is not null)
        {
            MountNamespaceRelease.Release(mountNamespace);
        }
    }

    /// <summary>Ends the makers, waits until the loop reaped them (no zombie outlives the engine) and releases the namespaces nobody took.</summary>
    public void Dispose()
    {
        List<Maker> makers;
        Task[] retiring;
        lock (_makers)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            makers = [.. _makers.Values];
            _makers.Clear();
            retiring = [.. _retiring];
        }

        _creations.Idle -= Refill;
        // Outside the lock: the loop's OnClosed takes it.
        foreach (var maker in makers)
        {
            maker.Dispose();
        }

        Task.WaitAll(retiring);
    }

    /// <summary>One maker process (<see cref="HelperAgent"/>): up to <see cref="Depth"/> namespaces ready and one being made.</summary>
    private sealed class Maker : IAgentListener, IDisposable
    {
        private static readonly byte[] s_make = AgentProtocol.Encode(["make"]);
        private readonly HostMirrors _owner;
        private readonly HelperAgent _process;
        private readonly Queue<(SafeFileHandle Namespace, long MadeAt)> _ready = new();
        private TaskCompletionSource<SafeFileHandle?>? _making;
        private bool _claimed, _gone;

        public Maker(HostMirrors owner)
        {
            _owner = owner;
            _process = new HelperAgent(this);
        }

        /// <summary>
        /// The engine's mount table read just before the maker was spawned, which is no later than the maker copied
        /// it (<see cref="SourcesFit"/>); null when it could not be read (then no container with sources takes one).
        /// </summary>
        public IReadOnlySet<string>? Mounts { get; private set; }

        /// <summary>Under the owner's lock: starts the maker with the first start's namespace asked for (that start waits for it).</summary>
        public void Spawn(EngineLoop loop, string agentPath, SafeFileHandle userns, long layerSize, IReadOnlyList<string> submounts, IReadOnlyList<string> readOnlyTrees, string stage)
        {
            Mounts = _owner._mountTable();
            Directory.CreateDirectory(stage, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            _making = new(TaskCreationOptions.RunContinuationsAsynchronously);
            _process.Spawn(loop, agentPath, userns,
                [AgentProtocol.Mirror(layerSize, stage, submounts, readOnlyTrees), s_make]);
        }

        /// <summary>
        /// Under the owner's lock: the oldest fresh namespace ready; else the one being made, asked for now if none is
        /// (at most one start waits for it); else null. Stale ones are released unused.
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
                    return Task.FromResult<SafeFileHandle?>(ready.Namespace);
                }

                Release(ready.Namespace);
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

        /// <summary>Under the owner's lock: asks for one more namespace while no creation is in flight and the stock is short.</summary>
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
                Release(ready.Namespace);
            }
        }

        /// <summary>Ends the maker (<see cref="HelperAgent.Dispose"/>), then releases the namespaces it made that nobody took.</summary>
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
