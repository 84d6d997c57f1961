using System.Globalization;
using IsoTest.Engine.Native;
using IsoTest.Engine.Process;
using IsoTest.Engine.RootFs;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Namespaces;

/// <summary>
/// Rootless: one user namespace per distinct pair of id maps, made once per engine and joined
/// by every private container with those maps (the agent's <c>joinuser</c>, native/PROTOCOL.md "Shared user
/// namespaces"), as rootless podman keeps one user namespace for its containers. Subordinate ranges can only be
/// written by the setuid helpers newuidmap/newgidmap: two execs per start (~6.6 ms on this VM) when every container
/// mapped a namespace of its own; here they run once per maps, in the agent binary's <c>userns</c> mode, and each start
/// only joins. Without ranges the maps are the caller's own ids, which the maker writes itself; sharing still lets the
/// engine make host mirrors and network namespaces ahead in it (RootFs/HostMirrors.cs, Networking/UserNetnsPools.cs),
/// which need the container's user namespace to exist before the container. The namespace is a child of the initial one with the same maps as before, so a container sees the same
/// <c>/proc/self/uid_map</c>; a rootless network's member keeps a namespace of its own (the network holder's child).
/// <para>
/// What sharing costs in isolation: the containers' ids were the same host ids before (the maps are equal), so files
/// and per-uid limits were shared already. New is that one user namespace owns every such container's pid, mount,
/// network, uts, ipc and cgroup namespaces, so a capability held in it reaches them all, given a handle on one. A
/// container has none: the pid namespaces are siblings (another container's processes have no pid here and are
/// absent from this /proc, so no kill, ptrace or /proc/PID/ns), the payload lacks CAP_SYS_ADMIN, CAP_SYS_PTRACE and
/// CAP_NET_ADMIN (Docker's default set), and Docker's seccomp profile refuses it setns, unshare and namespace clones,
/// and every keyctl call (the uid's user keyring is now one for all of them). Cgroups, the session keyring and the
/// seccomp filter stay per container. A container given CAP_SYS_ADMIN or an unconfined profile trusts the others more,
/// as under rootless podman.
/// </para>
/// </summary>
internal sealed class SharedUserNamespaces(EngineLoop loop, string agentPath) : IDisposable
{
    private readonly Dictionary<(string Uid, string Gid), Task<SafeFileHandle>> _made = [];
    private bool _disposed;

    /// <summary>
    /// The user namespace with <paramref name="maps"/> (host ids outside, <see cref="IdMaps.ForContainer"/>), made on
    /// first use; this object keeps it (the caller passes a duplicate on and never disposes this one).
    /// </summary>
    /// <exception cref="AgentException">The maker failed (stage <c>idmap</c>: what newuidmap or newgidmap said).</exception>
    /// <exception cref="AgentGoneException">The maker exited without a namespace.</exception>
    public Task<SafeFileHandle> ForAsync(IdMaps maps)
    {
        lock (_made)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var key = (maps.UidMap, maps.GidMap);
            if (!_made.TryGetValue(key, out var made) || made.IsFaulted || made.IsCanceled)
            {
                // A failure is not kept: the next start tries again and reports what the helpers say then.
                made = MakeAsync(maps);
                _made[key] = made;
            }

            return made;
        }
    }

    private async Task<SafeFileHandle> MakeAsync(IdMaps maps)
    {
        // Without ranges ("-" for both helpers) the maker writes the one-id maps itself.
        var (newUidMap, newGidMap) = maps.Helpers is { } helpers ? (helpers.NewUidMap, helpers.NewGidMap) : ("-", "-");
        var (engineEnd, makerEnd) = Fd.SeqPacketPair();
        var control = new AgentSocket(engineEnd);
        var maker = new Maker(control);
        // Its stdout and stderr are /dev/null: it reports on the control socket only.
        await loop.SpawnAsync(agentPath, Fd.OpenDevNull(), [Fd.OpenDevNull(), Fd.OpenDevNull(), makerEnd], control, maker,
            [AgentProtocol.Encode(["userns", newUidMap, newGidMap, maps.UidMap, maps.GidMap])]).ConfigureAwait(false);
        return await maker.Made.Task.ConfigureAwait(false);
    }

    /// <summary>Closes the engine's handles; containers still running keep their namespace alive until they end.</summary>
    public void Dispose()
    {
        lock (_made)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var made in _made.Values)
            {
                // A maker still running closes what it sends into a handle nobody reads: dispose it when it arrives.
                made.ContinueWith(t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            _made.Clear();
        }
    }

    /// <summary>Reads the maker's one answer: <c>made</c> with the namespace, or <c>error</c>.</summary>
    private sealed class Maker(AgentSocket control) : IAgentListener
    {
        public TaskCompletionSource<SafeFileHandle> Made { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void OnMessage(string[] fields, SafeFileHandle[] fds)
        {
            if (fields is ["made"] && fds.Length == 1 && Made.TrySetResult(fds[0]))
            {
                return;
            }

            if (AgentProtocol.Parse(fields, fds) is AgentEvent.SetupFailed failed)
            {
                Made.TrySetException(new AgentException(failed.Error));
            }
            else
            {
                Made.TrySetException(Errors.ProtocolError($"the user namespace maker answered '{string.Join(' ', fields)}' with {fds.Length.ToString(CultureInfo.InvariantCulture)} descriptors"));
            }

            Array.ForEach(fds, fd => fd.Dispose());
        }

        public void OnClosed()
        {
            Made.TrySetException(new AgentGoneException());
            control.Dispose();
        }
    }
}
