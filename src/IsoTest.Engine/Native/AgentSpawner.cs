using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>
/// The engine's spawner: one <c>isotest-init spawn-server</c> process (native/spawner.c) that forks and execs every
/// agent from its own small descriptor table. A process the engine spawned itself would copy the engine's whole
/// table at clone and close each descriptor again at exec, and the engine holds ~3 per live container: measured
/// here, posix_spawn + exec of a no-op took 1.1 ms with no other descriptors open and 7.4 ms with 12,000 (what 4,000
/// live containers hold), on the engine's one spawning thread. The spawner holds four.
/// <para>
/// The shims are the spawner's children, reaped by it; PR_SET_PDEATHSIG chains engine thread → spawner → shim, so
/// a killed engine still takes every container with it. Used from the engine loop's thread only (the thread the
/// spawner's parent-death signal follows).
/// </para>
/// </summary>
internal sealed unsafe class AgentSpawner(string agentPath) : IDisposable
{
    private AgentSocket? _requests;
    private int _pid;

    /// <summary>The spawner process's pid, 0 before the first spawn (for tests).</summary>
    public int Pid => _pid;

    /// <summary>
    /// Forks and execs the agent with <paramref name="fds"/> as its descriptors 0, 1, 2, ...; returns the shim's pid.
    /// The spawner is started on first use, and again when it has exited (someone killed it: its shims died with it).
    /// Throws <see cref="NativeException"/> with the spawner's errno (EAGAIN: no more processes).
    /// </summary>
    public int Spawn(ReadOnlySpan<SafeFileHandle> fds)
    {
        for (var attempt = 0; ; attempt++)
        {
            if (_requests is null)
            {
                Start();
            }

            try
            {
                return Request(fds);
            }
            catch (NativeException e) when (e.Errno == Libc.ESRCH && attempt == 0)
            {
                Stop();
            }
        }
    }

    /// <summary>Closes the request socket: the spawner exits at EOF (taking its shims with it) and is reaped.</summary>
    public void Dispose() => Stop();

    /// <summary>posix_spawn of <c>isotest-init spawn-server</c>, while the caller's descriptor table is still what it is now.</summary>
    private void Start()
    {
        var (engineEnd, spawnerEnd) = Fd.SeqPacketPair();
        try
        {
            using var devNull = Fd.OpenDevNull();
            _pid = AgentProcess.Spawn(agentPath, [devNull, devNull, devNull, spawnerEnd], ["spawn-server"]);
            _requests = new AgentSocket(engineEnd);
        }
        catch
        {
            engineEnd.Dispose();
            throw;
        }
        finally
        {
            spawnerEnd.Dispose();
        }
    }

    private void Stop()
    {
        if (_requests is not null)
        {
            _requests.Dispose();
            _requests = null;
            AgentProcess.Reap(_pid);
        }
    }

    private int Request(ReadOnlySpan<SafeFileHandle> fds)
    {
        try
        {
            _requests!.Send("spawn\0"u8.ToArray(), fds);
        }
        catch (NativeException e) when (e.Errno == Libc.EPIPE || e.Errno == Libc.ECONNRESET)
        {
            throw Errors.ProcessGone("spawning an init agent (the spawner exited)");
        }

        // The answer comes as soon as fork returned: a blocking read, microseconds.
        var answer = stackalloc byte[32];
        nint n;
        do
        {
            n = Libc.read(_requests.RawFd, answer, 32);
        }
        while (n < 0 && Libc.Errno == Libc.EINTR);

        if (n < 0 && Libc.Errno != Libc.ECONNRESET)
        {
            throw Errors.Native("reading the spawner's answer", Libc.Errno);
        }

        if (n <= 0)
        {
            throw Errors.ProcessGone("spawning an init agent (the spawner exited)");
        }

        var fields = Encoding.ASCII.GetString(answer, (int)n).TrimEnd('\0').Split('\0');
        if (fields.Length != 2 || !int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            throw Errors.ProtocolError("spawning an init agent (the spawner's answer)");
        }

        return fields[0] switch
        {
            "pid" => value,
            "err" => throw Errors.Native("spawning an init agent (fork in the spawner)", value),
            _ => throw Errors.ProtocolError("spawning an init agent (the spawner's answer)"),
        };
    }
}
