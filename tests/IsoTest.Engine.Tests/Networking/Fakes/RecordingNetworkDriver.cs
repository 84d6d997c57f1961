using IsoTest.Engine.Networking;

namespace IsoTest.Engine.Tests.Networking.Fakes;

/// <summary>
/// Records what the engine asks of its network driver; every container gets a namespace the agent makes
/// itself (root and rootless alike), so the engine runs for real around it.
/// </summary>
internal sealed class RecordingNetworkDriver : INetworkDriver
{
    private readonly Lock _lock = new();
    private readonly List<string> _calls = [];

    /// <summary>A problem <see cref="Check"/> reports for every network; null: none.</summary>
    public string? Problem { get; init; }

    public IReadOnlyList<string> Calls
    {
        get
        {
            lock (_lock)
            {
                return [.. _calls];
            }
        }
    }

    public string? Check(Network network)
    {
        Record($"check {network}");
        return Problem;
    }

    public IDisposable? BeginCreate(Network network)
    {
        Record($"begin {network}");
        return new End(this, network);
    }

    public NetworkAttachment Attach(Network network)
    {
        Record($"attach {network}");
        return new NetworkAttachment(network.Kind == NetworkKind.Host ? NetnsMode.Host : NetnsMode.New);
    }

    public void Dispose() => Record("dispose");

    private void Record(string call)
    {
        lock (_lock)
        {
            _calls.Add(call);
        }
    }

    private sealed class End(RecordingNetworkDriver driver, Network network) : IDisposable
    {
        public void Dispose() => driver.Record($"end {network}");
    }
}
