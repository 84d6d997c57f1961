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

    public int NetworkCount => 0;

    public string? Check(ContainerSpec spec)
    {
        Record($"check {spec.Network}");
        return Problem;
    }

    public IDisposable? BeginCreate(ContainerSpec spec)
    {
        Record($"begin {spec.Network}");
        return new End(this, spec.Network);
    }

    public NetworkAttachment Attach(ContainerSpec spec, string containerId, IReadOnlyList<string> names, Engine.RootFs.IdMaps? memberMaps)
    {
        Record($"attach {spec.Network}");
        return new NetworkAttachment(spec.Network.Kind == NetworkKind.Host ? NetnsMode.Host : NetnsMode.New);
    }

    public void Detach(string containerId) => Record("detach");

    public INetwork CreateNetwork(NetworkSpec spec, int prefixLength)
    {
        Record($"create {spec.Name}");
        throw new NetworkException(spec.Name, $"The recording driver makes no network '{spec.Name}'.");
    }

    public ValueTask RemoveNetworksAsync()
    {
        Record("remove networks");
        return ValueTask.CompletedTask;
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
