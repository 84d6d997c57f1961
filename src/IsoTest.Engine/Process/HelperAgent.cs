using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Process;

/// <summary>
/// The life of an agent process that is not a container but works for the engine in a user namespace: the makers in
/// the engine's shared one (the host mirrors, RootFs/HostMirrors.cs; network namespaces, Networking/UserNetnsPools.cs)
/// and the filer in a running container's (Process/ContainerFiler.cs). Spawned by the engine's loop with the
/// descriptors a container's agent has where it matters (the control socket on 3, the user namespace on 5), asked
/// with messages, told to exit at dispose and reaped. What it does, and what a message means, stay with the owner
/// (<paramref name="owner"/>), which gets every message and, once the process is gone, OnClosed.
/// </summary>
internal sealed class HelperAgent(IAgentListener owner) : IAgentListener, IDisposable
{
    private readonly TaskCompletionSource _reaped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private AgentSocket? _control;
    private Task? _spawned;

    /// <summary>
    /// Starts the agent with <paramref name="firstMessages"/> queued for it. One that cannot start closes at once
    /// (the owner's OnClosed runs): a maker's containers then make their own, a filer's next request fails.
    /// </summary>
    public void Spawn(EngineLoop loop, string agentPath, SafeFileHandle userns, IReadOnlyList<byte[]> firstMessages)
    {
        var (engineEnd, agentEnd) = Fd.SeqPacketPair();
        _control = new AgentSocket(engineEnd);
        SafeFileHandle[] ends = [Fd.OpenDevNull(), Fd.OpenDevNull(), agentEnd, Fd.OpenDevNull(), Fd.Duplicate(userns)];
        _spawned = loop.SpawnAsync(agentPath, Fd.OpenDevNull(), ends, _control, this, firstMessages);
        _spawned.ContinueWith(_ => OnClosed(), CancellationToken.None, TaskContinuationOptions.NotOnRanToCompletion, TaskScheduler.Default);
    }

    /// <summary>
    /// Sends one request (with <paramref name="fds"/>, which stay the caller's) once the agent runs; false when it is
    /// gone or could not start (its OnClosed ran or is on the way, so the owner need not wait for an answer).
    /// </summary>
    public bool TrySend(byte[] message, ReadOnlySpan<SafeFileHandle> fds = default)
    {
        try
        {
            _spawned!.GetAwaiter().GetResult();
            _control!.Send(message, fds);
            return true;
        }
        catch (Exception e) when (e is NativeException or ObjectDisposedException or AgentGoneException)
        {
            return false; // it died, or the engine is being disposed: its EOF is on the way
        }
        catch (Exception) when (_spawned!.IsFaulted)
        {
            return false; // it could not be spawned: OnClosed ran
        }
    }

    public void OnMessage(string[] fields, SafeFileHandle[] fds) => owner.OnMessage(fields, fds);

    public void OnClosed()
    {
        owner.OnClosed();
        _control?.Dispose();
        _reaped.TrySetResult();
    }

    /// <summary>
    /// Tells the agent to exit (PDEATHSIG ends it should the engine die first) and waits for the loop to reap it.
    /// The socket stays open until then: the loop sees the maker's EOF only on a descriptor it still watches.
    /// </summary>
    public void Dispose()
    {
        if (_spawned is null)
        {
            return;
        }

        TrySend(AgentProtocol.Encode(["exit"]));
        _reaped.Task.Wait(TimeSpan.FromSeconds(10));
    }
}
