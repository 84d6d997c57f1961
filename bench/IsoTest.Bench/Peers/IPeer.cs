namespace IsoTest.Bench.Peers;

/// <summary>One way of running the same container cycle: IsoTest's engine, crun, docker.</summary>
internal interface IPeer : IAsyncDisposable
{
    /// <summary>The row's name.</summary>
    string Name { get; }

    /// <summary>What exactly this peer runs, for the table's notes column. Complete after <see cref="PrepareAsync"/>.</summary>
    string Notes { get; }

    /// <summary>Checks the peer can run here and sets it up; throws <see cref="PeerUnavailableException"/> saying why not.</summary>
    Task PrepareAsync(CancellationToken cancellationToken);

    /// <summary>One measured unit of work (a cycle, a server fixture), torn down before it returns. Throws when it fails.</summary>
    Task CycleAsync(CancellationToken cancellationToken);
}

/// <summary>A peer cannot run on this machine; the message says why and how to fix it.</summary>
internal sealed class PeerUnavailableException(string message) : Exception(message);
