using System.Collections.Concurrent;
using IsoTest.Engine.Containers;
using IsoTest.Engine.Native;
using IsoTest.Engine.RootFs;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Process;

/// <summary>
/// The conversation with one container's init agent: one typed method per verb of native/PROTOCOL.md
/// (messages made and read by <see cref="AgentProtocol"/>; failures turned into exceptions by
/// <see cref="AgentErrors"/>). Messages arrive on the engine loop's thread and complete tasks here;
/// every continuation runs asynchronously, off that thread.
/// </summary>
internal sealed class AgentClient : IAgentListener
{
    private const TaskCreationOptions Async = TaskCreationOptions.RunContinuationsAsynchronously;
    private readonly ConcurrentDictionary<long, TaskCompletionSource<AgentReply>> _requests = new();
    private readonly ConcurrentDictionary<long, TaskCompletionSource<int>> _execExits = new();
    private readonly string _containerId;
    private long _nextRequestId;
    private AgentEvent.Reaped? _reaped;
    private ProcessHandle? _init;

    public AgentClient(string containerId, AgentSocket control)
    {
        _containerId = containerId;
        Control = control;
    }

    public AgentSocket Control { get; }

    /// <summary>Completes when the container is set up; faults with <see cref="AgentException"/> on a setup error.</summary>
    public TaskCompletionSource Created { get; } = new(Async);

    /// <summary>Completes with the payload's pid (inside) or faults with <see cref="AgentException"/> (it could not be exec'd).</summary>
    public TaskCompletionSource<int> Started { get; } = new(Async);

    /// <summary>The payload's raw wait status; with no `exit` report (init itself died), init's.</summary>
    public TaskCompletionSource<int> Exited { get; } = new(Async);

    /// <summary>Completes when every agent process is gone (control socket EOF, shim reaped), with the shim's report if it made one.</summary>
    public TaskCompletionSource<AgentEvent.Reaped?> Gone { get; } = new(Async);

    /// <summary>Init's pid in the host's PID namespace, once known.</summary>
    private int InitPid { get; set; }

    /// <summary>
    /// CPU time of init's process tree from /proc, or null once init is gone (its number may name another
    /// process by then). Read first, checked after: a process alive after the read was alive during it.
    /// </summary>
    public TimeSpan? InitTreeCpuTime()
    {
        if (Volatile.Read(ref _init) is not { } init)
        {
            return null;
        }

        var cpu = ProcessTreeCpu.Read(InitPid);
        return init.IsAlive ? cpu : null;
    }

    /// <summary>
    /// The root init sees (its mount namespace, every mount in it), opened from the host; null once init is gone.
    /// With <paramref name="callsInUserNamespace"/> (rootless) every call on it is made by what that returns for init's
    /// user namespace (Process/ContainerFiler.cs), so the tree may touch what the container's root may.
    /// </summary>
    public LayerTree? OpenRoot(Func<SafeFileHandle, ITreeCalls>? callsInUserNamespace = null)
    {
        if (Volatile.Read(ref _init) is not { } init)
        {
            return null;
        }

        try
        {
            if (callsInUserNamespace is null)
            {
                return LayerTree.OpenRootOf(InitPid, () => init.IsAlive);
            }

            // Opened first, checked after: a namespace of a live init is that container's, not a reused pid's.
            var path = $"/proc/{InitPid}/ns/user";
            var fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
            if (fd < 0 || !init.IsAlive)
            {
                if (fd >= 0)
                {
                    Libc.close(fd);
                }

                return null;
            }

            using var userNamespace = new SafeFileHandle(fd, ownsHandle: true);
            return LayerTree.OpenRootOf(InitPid, () => init.IsAlive, callsInUserNamespace(userNamespace));
        }
        catch (LayerTreeException) when (!init.IsAlive)
        {
            return null; // init exited meanwhile
        }
    }

    /// <summary>The processes under init (docker top), or empty once init is gone; read first, checked after, as above.</summary>
    public IReadOnlyList<ProcessTreeCpu.Entry> Processes()
    {
        if (Volatile.Read(ref _init) is not { } init)
        {
            return [];
        }

        var list = ProcessTreeCpu.List(InitPid);
        return init.IsAlive ? list : [];
    }

    /// <summary>`start`: run the payload.</summary>
    /// <returns>False when the agent is already gone.</returns>
    public bool Start(Payload payload) => TrySend(AgentProtocol.Start(payload));

    /// <summary>`signal`: send <paramref name="signal"/> to the payload.</summary>
    public bool Signal(int signal) => TrySend(AgentProtocol.Signal(signal));

    /// <summary>`kill`: SIGKILL every process in the container; init exits, the kernel empties the PID namespace.</summary>
    public bool Kill() => TrySend(AgentProtocol.Kill());

    /// <summary>
    /// For an agent that no longer answers: SIGKILLs init from outside, through the pidfd opened when its
    /// pid was reported (init's death empties the PID namespace). Gone already is fine.
    /// </summary>
    public void KillInit() => Volatile.Read(ref _init)?.Kill();

    /// <summary>`exec`: runs <paramref name="command"/> inside with the given descriptors; returns a task of its exit code.</summary>
    /// <exception cref="ExecFailedException">It could not be executed.</exception>
    /// <exception cref="AgentGoneException">The container is gone.</exception>
    public async Task<Task<int>> ExecAsync(ResolvedUser user, Payload payload, IReadOnlyList<string> command, SafeFileHandle[] stdio, CancellationToken cancellationToken)
    {
        long id = Interlocked.Increment(ref _nextRequestId);

        // Interest in the exit is registered before the exec is sent, so the exit cannot be missed.
        var exit = new TaskCompletionSource<int>(Async);
        _execExits[id] = exit;
        var reply = await RequestAsync(id, AgentProtocol.Exec(id, user, payload, command), stdio, cancellationToken).ConfigureAwait(false);
        if (reply is AgentReply.ExecFailed failed)
        {
            _execExits.TryRemove(id, out _);
            throw AgentErrors.ExecFailed(_containerId, failed.Error);
        }

        return exit.Task.ContinueWith(t => AgentErrors.ExitCode(t.Result), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>`connect`: a socket connected to 127.0.0.1:<paramref name="port"/> inside, or null when nothing listens there or the container is gone.</summary>
    public async Task<SafeFileHandle?> ConnectAsync(int port, CancellationToken cancellationToken)
    {
        long id = Interlocked.Increment(ref _nextRequestId);
        try
        {
            return await RequestAsync(id, AgentProtocol.Connect(id, port), [], cancellationToken).ConfigureAwait(false) is AgentReply.Connected connected
                ? connected.Socket
                : null;
        }
        catch (AgentGoneException)
        {
            return null;
        }
    }

    /// <summary>`stat`: whether <paramref name="path"/> exists inside the container's root.</summary>
    /// <exception cref="AgentGoneException">The container is gone.</exception>
    public async Task<bool> StatAsync(string path, CancellationToken cancellationToken)
    {
        long id = Interlocked.Increment(ref _nextRequestId);
        return await RequestAsync(id, AgentProtocol.Stat(id, path), [], cancellationToken).ConfigureAwait(false) is AgentReply.Stat { Exists: true };
    }

    private async Task<AgentReply> RequestAsync(long id, byte[] message, SafeFileHandle[] fds, CancellationToken cancellationToken)
    {
        var reply = new TaskCompletionSource<AgentReply>(Async);
        _requests[id] = reply;
        try
        {
            if (Gone.Task.IsCompleted)
            {
                throw new AgentGoneException();
            }

            Control.Send(message, fds);
            return await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Whoever loses this race closes a connected socket: the loop (the reply finds no waiter) or here.
            if (!reply.TrySetCanceled() && reply.Task.Result is AgentReply.Connected late)
            {
                late.Socket.Dispose();
            }

            throw;
        }
        catch (Exception e) when (e is NativeException or ObjectDisposedException)
        {
            throw new AgentGoneException();
        }
        finally
        {
            _requests.TryRemove(id, out _);
        }
    }

    private bool TrySend(byte[] message)
    {
        try
        {
            Control.Send(message);
            return true;
        }
        catch (Exception e) when (e is NativeException or ObjectDisposedException)
        {
            return false; // Already gone (EPIPE/ECONNRESET, or its socket closed).
        }
    }

    public void OnMessage(string[] fields, SafeFileHandle[] fds)
    {
        var message = AgentProtocol.Parse(fields, fds);
        switch (message)
        {
            case AgentEvent.Pid pid:
                InitPid = pid.HostPid;
                Volatile.Write(ref _init, ProcessHandle.TryOpen(pid.HostPid));
                break;
            case AgentEvent.Created:
                Created.TrySetResult();
                break;
            case AgentEvent.SetupFailed failed:
                Created.TrySetException(new AgentException(failed.Error));
                Started.TrySetException(new AgentException(failed.Error));
                break;
            case AgentEvent.Started started:
                Started.TrySetResult(started.PayloadPid);
                break;
            case AgentEvent.StartFailed failed:
                Started.TrySetException(new AgentException(failed.Error));
                break;
            case AgentEvent.Exited exited:
                Exited.TrySetResult(exited.Status);
                break;
            case AgentEvent.Reaped reaped:
                _reaped = reaped;
                if (fds.Length == 1)
                {
                    Namespaces.MountNamespaceRelease.Release(fds[0]); // the container's mount namespace: torn down off this path
                    return;
                }

                break;
            case AgentEvent.ExecExited exit when _execExits.TryRemove(exit.Id, out var waiter):
                waiter.TrySetResult(exit.Status);
                break;
            case AgentEvent.Reply reply when _requests.TryGetValue(reply.Id, out var waiter) && waiter.TrySetResult(reply.Answer):
                return; // the requester owns the descriptors now
        }

        // Nobody took them (an unknown verb, a reply nobody waits for any more): close them here.
        foreach (var fd in fds)
        {
            fd.Dispose();
        }
    }

    public void OnClosed()
    {
        var gone = new AgentGoneException();
        Created.TrySetException(gone);
        Started.TrySetException(gone);

        // With no `exit` message init itself died (killed, or OOM-killed): its status is the container's.
        Exited.TrySetResult(_reaped?.Status ?? AgentErrors.KilledStatus);
        foreach (var request in _requests.Values)
        {
            request.TrySetException(gone);
        }

        foreach (var exit in _execExits.Values)
        {
            exit.TrySetResult(AgentErrors.KilledStatus);
        }

        // Observe the faults nobody may await (a container that never started).
        _ = Created.Task.Exception;
        _ = Started.Task.Exception;
        Gone.TrySetResult(_reaped);
        Control.Dispose();
        Interlocked.Exchange(ref _init, null)?.Dispose();
    }
}

/// <summary>Setup or the payload's exec failed inside the agent.</summary>
internal sealed class AgentException(AgentError error) : Exception(error.ToString())
{
    public AgentError Error { get; } = error;
}

/// <summary>The agent exited (the container is gone) before answering.</summary>
internal sealed class AgentGoneException() : Exception("the container's init agent has exited");
