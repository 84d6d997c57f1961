using System.Collections.Concurrent;
using System.Globalization;
using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Process;

/// <summary>What the agent reported when setup failed: the step, errno and the path concerned.</summary>
internal sealed record AgentError(string Stage, int Errno, string Detail)
{
    public string ErrnoText => Libc.ErrnoText(Errno);
}

/// <summary>The shim's final report: init's raw wait status and the CPU time of everything init reaped.</summary>
internal sealed record AgentReaped(int Status, TimeSpan CpuTime);

/// <summary>One reply to a request (exec, connect, stat): its fields after the verb and id, and any descriptors.</summary>
internal sealed record AgentReply(string Verb, string[] Fields, SafeFileHandle[] Fds);

/// <summary>
/// The conversation with one container's init agent (native/PROTOCOL.md). Messages arrive on the engine
/// loop's thread and complete tasks here; every continuation runs asynchronously, off that thread.
/// </summary>
internal sealed class AgentChannel : IAgentListener
{
    private const TaskCreationOptions Async = TaskCreationOptions.RunContinuationsAsynchronously;
    private readonly ConcurrentDictionary<long, TaskCompletionSource<AgentReply>> _requests = new();
    private readonly ConcurrentDictionary<long, TaskCompletionSource<int>> _execExits = new();
    private long _nextRequestId;

    public AgentChannel(AgentSocket control) => Control = control;

    public AgentSocket Control { get; }

    /// <summary>Completes when the container is set up; faults with <see cref="AgentException"/> on a setup error.</summary>
    public TaskCompletionSource Created { get; } = new(Async);

    /// <summary>Completes with the payload's pid (inside) or faults with the exec failure.</summary>
    public TaskCompletionSource<int> Started { get; } = new(Async);

    /// <summary>The payload's raw wait status.</summary>
    public TaskCompletionSource<int> Exited { get; } = new(Async);

    /// <summary>Completes when every agent process is gone (control socket EOF, shim reaped).</summary>
    public TaskCompletionSource<AgentReaped?> Gone { get; } = new(Async);

    /// <summary>Init's pid in the host's PID namespace, once known.</summary>
    public int InitPid { get; private set; }

    private AgentReaped? _reaped;

    public void Send(params string[] fields) => Control.Send(AgentSocket.Encode(fields));

    /// <summary>Registers interest in an exec's exit before the exec is sent, so the exit cannot be missed.</summary>
    public Task<int> ExpectExecExit(long id)
    {
        var exit = new TaskCompletionSource<int>(Async);
        _execExits[id] = exit;
        return exit.Task;
    }

    public long NextRequestId() => Interlocked.Increment(ref _nextRequestId);

    /// <summary>Sends a request whose reply carries the same id (from <see cref="NextRequestId"/>), and waits for that reply.</summary>
    public async Task<AgentReply> RequestAsync(long id, string verb, IReadOnlyList<string> fields, ReadOnlyMemory<SafeFileHandle> fds, CancellationToken cancellationToken)
    {
        var reply = new TaskCompletionSource<AgentReply>(Async);
        _requests[id] = reply;
        try
        {
            if (Gone.Task.IsCompleted)
            {
                throw new AgentGoneException();
            }

            Control.Send(AgentSocket.Encode([verb, id.ToString(CultureInfo.InvariantCulture), .. fields]), fds.Span);
            return await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
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

    public void OnMessage(string[] fields, SafeFileHandle[] fds)
    {
        if (fields.Length == 0)
        {
            return;
        }

        switch (fields[0])
        {
            case "pid":
                InitPid = Int(fields, 1);
                break;
            case "created":
                Created.TrySetResult();
                break;
            case "error":
                var error = new AgentError(Field(fields, 1), Int(fields, 2), Field(fields, 3));
                Created.TrySetException(new AgentException(error));
                Started.TrySetException(new AgentException(error));
                break;
            case "started":
                Started.TrySetResult(Int(fields, 1));
                break;
            case "execfail":
                Started.TrySetException(new AgentException(new AgentError(Field(fields, 1), Int(fields, 2), Field(fields, 3))));
                break;
            case "exit":
                Exited.TrySetResult(Int(fields, 1));
                break;
            case "reaped":
                _reaped = new AgentReaped(Int(fields, 1), TimeSpan.FromMicroseconds(Long(fields, 2) + Long(fields, 3)));
                break;
            case "exec-exit":
                if (_execExits.TryRemove(Long(fields, 1), out var exit))
                {
                    exit.TrySetResult(Int(fields, 2));
                }

                break;
            default:
                // Replies to requests: verb, id, fields...
                if (fields.Length >= 2 && long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var id) && _requests.TryGetValue(id, out var reply))
                {
                    reply.TrySetResult(new AgentReply(fields[0], fields[2..], fds));
                    return;
                }

                foreach (var fd in fds)
                {
                    fd.Dispose();
                }

                break;
        }
    }

    public void OnClosed()
    {
        var gone = new AgentGoneException();
        Created.TrySetException(gone);
        Started.TrySetException(gone);

        // With no `exit` message init itself died (killed, or OOM-killed): its status is the container's.
        Exited.TrySetResult(_reaped?.Status ?? (128 + Libc.SIGKILL));
        foreach (var request in _requests.Values)
        {
            request.TrySetException(gone);
        }

        foreach (var exit in _execExits.Values)
        {
            exit.TrySetResult(128 + Libc.SIGKILL);
        }

        // Observe the faults nobody may await (a container that never started).
        _ = Created.Task.Exception;
        _ = Started.Task.Exception;
        Gone.TrySetResult(_reaped);
        Control.Dispose();
    }

    /// <summary>Converts a raw wait status into Docker's exit code convention.</summary>
    public static int ExitCode(int rawStatus)
    {
        int signal = rawStatus & 0x7f;
        return signal == 0 ? (rawStatus >> 8) & 0xff : 128 + signal;
    }

    private static string Field(string[] fields, int i) => i < fields.Length ? fields[i] : "";

    private static int Int(string[] fields, int i) => (int)Long(fields, i);

    private static long Long(string[] fields, int i) =>
        i < fields.Length && long.TryParse(fields[i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : 0;
}

/// <summary>Setup or exec failed inside the agent.</summary>
internal sealed class AgentException(AgentError error)
    : Exception($"{error.Stage}: {error.ErrnoText} (errno {error.Errno}) {error.Detail}")
{
    public AgentError Error { get; } = error;
}

/// <summary>The agent exited (the container is gone) before answering.</summary>
internal sealed class AgentGoneException() : Exception("the container's init agent has exited");
