using IsoTest.Engine.Native;
using IsoTest.Engine.Process;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.RootFs;

/// <summary>
/// Rootless with a shared user namespace, the host root's mirror (native/rootfs.c, <c>mirror_dir</c>) made ahead of
/// time: a maker (the agent binary's <c>mirror</c> mode, in the shared user namespace and a mount namespace of its
/// own) builds it while the previous container runs, and a start attaches that detached tree with one
/// <c>move_mount</c> (spec record <c>mirror</c>, fd 6) instead of making ~45 overlays itself.
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
internal sealed class HostMirrors(EngineLoop loop, string agentPath, TimeProvider time) : IDisposable
{
    // The mirror makes its own /proc, /sys, /dev, /tmp and /run (rootfs.c, mirror_host): targets there never change it.
    private static readonly string[] s_ownTopLevel = ["proc", "sys", "dev", "tmp", "run"];

    private readonly Dictionary<(string Uid, string Gid, long LayerSize), Maker> _makers = [];
    private readonly TimeProvider _time = time;
    private bool _disposed;

    private int _served;

    /// <summary>Trees handed to containers so far.</summary>
    public int Served => Volatile.Read(ref _served);

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
    /// layer of <paramref name="layerSize"/> bytes: the one ready, else the one being made (the maker started it at the
    /// previous start, so what is left of it is less than a whole mirror made here), else null and the container's
    /// init builds its own. The maker then makes the next. The caller owns the handle (fd 6 of the agent).
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
                maker.Spawn(loop, agentPath, userns, layerSize, submounts);
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

    /// <summary>How long a start waits for the tree being made (~5 ms on this VM, tens under load) before building its own.</summary>
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

        // Outside the lock: the loop's OnClosed takes it.
        foreach (var maker in makers)
        {
            maker.Dispose();
        }
    }

    /// <summary>One maker process: at most one tree ready and one being made.</summary>
    private sealed class Maker(HostMirrors owner) : IAgentListener, IDisposable
    {
        private static readonly byte[] s_make = AgentProtocol.Encode(["make"]);
        private readonly TaskCompletionSource _reaped = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private AgentSocket? _control;
        private Task? _spawned;
        private SafeFileHandle? _ready;
        private TaskCompletionSource<SafeFileHandle?>? _making;
        private long _readyAt;
        private bool _claimed, _gone;

        public void Spawn(EngineLoop loop, string agentPath, SafeFileHandle userns, long layerSize, IReadOnlyList<string> submounts)
        {
            var (engineEnd, makerEnd) = Fd.SeqPacketPair();
            _control = new AgentSocket(engineEnd);
            _making = new(TaskCreationOptions.RunContinuationsAsynchronously);
            // fds as a container's agent has them where it matters: the control socket on 3, the user namespace on 5.
            SafeFileHandle[] ends = [Fd.OpenDevNull(), Fd.OpenDevNull(), makerEnd, Fd.OpenDevNull(), Fd.Duplicate(userns)];
            _spawned = loop.SpawnAsync(agentPath, Fd.OpenDevNull(), ends, _control, this,
                [AgentProtocol.Encode(["mirror", layerSize.ToString(System.Globalization.CultureInfo.InvariantCulture), .. submounts]), s_make]);
            // A maker that cannot start leaves the containers building their own mirrors.
            _spawned.ContinueWith(_ => OnClosed(), CancellationToken.None, TaskContinuationOptions.NotOnRanToCompletion, TaskScheduler.Default);
        }

        /// <summary>Under the owner's lock: the ready tree, or the one being made (at most one start waits for it), or null.</summary>
        public Task<SafeFileHandle?> Take()
        {
            if (_gone)
            {
                return Task.FromResult<SafeFileHandle?>(null);
            }

            if (_ready is { } ready)
            {
                _ready = null;
                MakeNext();
                if (owner._time.GetElapsedTime(_readyAt) <= MaxAge)
                {
                    return Task.FromResult<SafeFileHandle?>(ready);
                }

                ready.Dispose(); // stale: this start waits for the one just asked for
            }

            if (_making is { } making && !_claimed)
            {
                _claimed = true;
                return making.Task;
            }

            return Task.FromResult<SafeFileHandle?>(null);
        }

        /// <summary>Under the owner's lock.</summary>
        private void MakeNext()
        {
            try
            {
                _control!.Send(s_make);
                _making = new(TaskCreationOptions.RunContinuationsAsynchronously);
                _claimed = false;
            }
            catch (Exception e) when (e is NativeException or ObjectDisposedException)
            {
                _gone = true; // it died; its EOF is on the way
            }
        }

        public void OnMessage(string[] fields, SafeFileHandle[] fds)
        {
            lock (owner._makers)
            {
                if (fields is ["mirror"] && fds.Length == 1 && !_gone && !owner._disposed && _making is { } made)
                {
                    _making = null;
                    if (_claimed)
                    {
                        made.TrySetResult(fds[0]); // a start is waiting for it: the next one starts now
                        MakeNext();
                    }
                    else
                    {
                        _ready = fds[0];
                        _readyAt = owner._time.GetTimestamp();
                    }

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
            lock (owner._makers)
            {
                _gone = true;
                _making?.TrySetResult(null);
                _ready?.Dispose();
                _ready = null;
            }

            _control?.Dispose();
            _reaped.TrySetResult();
        }

        /// <summary>
        /// Tells the maker to exit (PDEATHSIG ends it should the engine die first) and waits for the loop to reap it.
        /// The socket stays open until then: the loop sees the maker's EOF only on a descriptor it still watches.
        /// </summary>
        public void Dispose()
        {
            try
            {
                _spawned?.GetAwaiter().GetResult();
                _control?.Send(AgentProtocol.Encode(["exit"]));
            }
            catch (Exception e) when (e is NativeException or ObjectDisposedException or AgentGoneException)
            {
                // gone already: OnClosed ran or is about to
            }

            _reaped.Task.Wait(TimeSpan.FromSeconds(10));
            lock (owner._makers)
            {
                _ready?.Dispose();
                _ready = null;
            }
        }
    }
}
