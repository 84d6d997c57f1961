namespace IsoTest.Engine.Networking;

/// <summary>
/// The engine's network driver: a private network namespace per container (as root, a ready one from the
/// <see cref="NetnsPool"/>; rootless, the agent makes one inside the container's user namespace), or the host's.
/// </summary>
internal sealed class NamespaceNetworkDriver : INetworkDriver
{
    private readonly Lazy<NetnsPool>? _pool;

    /// <param name="pooled">Root: keep namespaces ready. Rootless cannot: the namespace must belong to a user namespace that does not exist yet.</param>
    public NamespaceNetworkDriver(bool pooled) => _pool = pooled ? new Lazy<NetnsPool>(() => new NetnsPool()) : null;

    /// <summary>The pool, started on first use; null when rootless.</summary>
    internal NetnsPool? Pool => _pool?.Value;

    public string? Check(Network network) => network.Kind == NetworkKind.Named
        ? $"WithNetwork(\"{network.Name}\"): the built-in engine cannot join user-defined networks yet: use Network.Private (loopback only) or Network.Host, or the Docker backend (ISOTEST_BACKEND=docker)."
        : null;

    public IDisposable? BeginCreate(Network network) => network.Kind == NetworkKind.Private ? Pool?.Hold() : null;

    public NetworkAttachment Attach(Network network)
    {
        if (network.Kind == NetworkKind.Host)
        {
            return new NetworkAttachment(NetnsMode.Host);
        }

        return Pool?.TryTake() is { } ready ? new NetworkAttachment(NetnsMode.Join, ready) : new NetworkAttachment(NetnsMode.New);
    }

    public void Dispose()
    {
        if (_pool is { IsValueCreated: true })
        {
            _pool.Value.Dispose();
        }
    }
}
