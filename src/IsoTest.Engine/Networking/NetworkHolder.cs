using System.Globalization;
using System.Net;
using System.Net.Sockets;
using IsoTest.Engine.Native;
using IsoTest.Engine.Process;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Networking;

/// <summary>
/// Rootless networks' namespaces, made by the holder (native/netholder.c, the init agent in its <c>netholder</c>
/// mode): a process that owns the engine's user namespace. The engine cannot make network namespaces or setns
/// into them rootless (both need CAP_SYS_ADMIN where it has none), but it has every capability in a user
/// namespace its own uid made: so the holder makes the namespaces and hands over their descriptors and
/// netlink sockets bound inside, and the engine configures them over rtnetlink as it does as root.
/// One request at a time; the holder dies with the engine (PR_SET_PDEATHSIG, EOF on its control socket).
/// </summary>
internal sealed class NetworkHolder : IAgentListener, IDisposable
{
    private readonly SemaphoreSlim _one = new(1, 1);
    private readonly AgentSocket _control;
    private readonly Task _spawned;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _reaped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<SafeFileHandle[]>? _reply;
    private bool _closed;

    /// <param name="loop">Spawns it and reads its replies.</param>
    /// <param name="agentPath">The agent binary, which is the holder in its netholder mode.</param>
    /// <param name="maps">With subordinate ranges, the holder's own maps (written by newuidmap/newgidmap); null maps the engine's ids only.</param>
    public NetworkHolder(EngineLoop loop, string agentPath, RootFs.IdMaps? maps = null)
    {
        var (engineEnd, holderEnd) = Fd.SeqPacketPair();
        _control = new AgentSocket(engineEnd);
        string[] first = maps?.Helpers is { } ranges ? ["netholder", ranges.NewUidMap, ranges.NewGidMap, maps.UidMap, maps.GidMap] : ["netholder"];
        // Its stdout and stderr are /dev/null: it reports on the control socket only.
        _spawned = loop.SpawnAsync(agentPath, Fd.OpenDevNull(), [Fd.OpenDevNull(), Fd.OpenDevNull(), holderEnd], _control, this, [AgentProtocol.Encode(first)]);
    }

    /// <summary>
    /// A network namespace for a network's bridge, netlink and netfilter sockets acting there, and the holder's user
    /// namespace that owns it (what slirp4netns joins to reach it).
    /// </summary>
    public (SafeFileHandle Namespace, Netlink Netlink, Netlink Netfilter, SafeFileHandle UserNamespace) Bridge()
    {
        var fds = Request(["bridge"], [], expected: 4);
        return (fds[0], Netlink.FromSocket(fds[1]), Netlink.FromSocket(fds[2]), fds[3]);
    }

    /// <summary>
    /// A member's namespaces: a user namespace with <paramref name="maps"/> (ids of the holder's namespace: the
    /// container's user or root as the engine's uid, with ranges the rest), a network namespace it owns (lo up), and
    /// a netlink socket acting there.
    /// </summary>
    public (SafeFileHandle Namespace, Netlink Netlink, SafeFileHandle UserNamespace) Member(RootFs.IdMaps maps)
    {
        var fds = Request(["member", maps.UidMap, maps.GidMap], [], expected: 3);
        return (fds[0], Netlink.FromSocket(fds[1]), fds[2]);
    }

    /// <summary>A TCP socket listening on <paramref name="address"/>:<paramref name="port"/> inside <paramref name="netns"/>.</summary>
    public Socket Listen(SafeFileHandle netns, IPAddress address, int port)
    {
        var fds = Request(["listen", address.ToString(), port.ToString(CultureInfo.InvariantCulture)], [netns], expected: 1);
        return Fd.ToSocket(fds[0]);
    }

    private SafeFileHandle[] Request(string[] fields, SafeFileHandle[] pass, int expected)
    {
        _one.Wait();
        try
        {
            _spawned.GetAwaiter().GetResult();
            if (!_ready.Task.Wait(TimeSpan.FromSeconds(30)))
            {
                throw Errors.TimedOut("the rootless network holder did not start");
            }

            _ready.Task.GetAwaiter().GetResult();
            var reply = new TaskCompletionSource<SafeFileHandle[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (this)
            {
                if (_closed)
                {
                    throw Errors.ProcessGone("the rootless network holder exited");
                }

                _reply = reply;
            }

            _control.Send(AgentProtocol.Encode(fields), pass);
            var fds = reply.Task.GetAwaiter().GetResult();
            if (fds.Length != expected)
            {
                foreach (var fd in fds)
                {
                    fd.Dispose();
                }

                throw Errors.ProtocolError($"the rootless network holder answered '{fields[0]}' with {fds.Length} descriptors, not {expected}");
            }

            return fds;
        }
        finally
        {
            _one.Release();
        }
    }

    public void OnMessage(string[] fields, SafeFileHandle[] fds)
    {
        TaskCompletionSource<SafeFileHandle[]>? reply;
        lock (this)
        {
            reply = _reply;
            _reply = null;
        }

        switch (fields)
        {
            case ["ready"]:
                _ready.TrySetResult();
                return;
            case ["made"]:
                if (reply is null || !reply.TrySetResult(fds))
                {
                    Array.ForEach(fds, fd => fd.Dispose());
                }

                return;
            case ["failed", var stage, var errno]:
                reply?.TrySetException(Errors.Native($"the rootless network holder's {stage}", int.Parse(errno, CultureInfo.InvariantCulture)));
                break;
            case ["error", var stage, var errno, var detail]:
                // Its own set-up failed (the user namespace): it exits after this.
                _ready.TrySetException(Errors.Native($"starting the rootless network holder: {stage} {detail}", int.Parse(errno, CultureInfo.InvariantCulture)));
                break;
        }

        Array.ForEach(fds, fd => fd.Dispose());
    }

    public void OnClosed()
    {
        TaskCompletionSource<SafeFileHandle[]>? reply;
        lock (this)
        {
            _closed = true;
            reply = _reply;
            _reply = null;
        }

        var gone = Errors.ProcessGone("the rootless network holder exited");
        _ready.TrySetException(gone);
        reply?.TrySetException(gone);
        _control.Dispose();
        _reaped.TrySetResult();
    }

    /// <summary>
    /// Tells the holder to exit and waits until the engine loop has reaped it (so no zombie outlives the engine);
    /// what it made lives on in the engine's descriptors. The socket stays open until then: the loop sees the
    /// holder's EOF only on a descriptor it still watches.
    /// </summary>
    public void Dispose()
    {
        _one.Wait();
        try
        {
            _spawned.GetAwaiter().GetResult();
            _control.Send(AgentProtocol.Encode(["exit"]));
        }
        catch (Exception e) when (e is NativeException or ObjectDisposedException)
        {
            // gone already: OnClosed ran or is about to
        }
        finally
        {
            _one.Release();
        }

        _reaped.Task.Wait(TimeSpan.FromSeconds(10));
    }
}
