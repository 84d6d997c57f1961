namespace IsoTest;

/// <summary>What a <see cref="Network"/> value means.</summary>
public enum NetworkKind
{
    /// <summary>Its own network namespace with only <c>lo</c>, up (the default; Docker's <c>--network none</c>).</summary>
    Private,

    /// <summary>The host's network namespace (Docker's <c>--network host</c>).</summary>
    Host,

    /// <summary>A user-defined network, joined by name (Docker's <c>--network NAME</c>); containers on it reach each other.</summary>
    Named,
}

/// <summary>
/// Which network a container is attached to: <see cref="Private"/> (the default), <see cref="Host"/>, or a
/// user-defined network given by name (<see cref="Named"/>) or as the object that created it (<see cref="Join"/>).
/// </summary>
public sealed record Network
{
    private Network(NetworkKind kind, string? name, INetwork? source)
    {
        Kind = kind;
        Name = name;
        Source = source;
    }

    /// <summary>Its own network namespace with only loopback: two containers may both listen on the same port.</summary>
    public static Network Private { get; } = new(NetworkKind.Private, null, null);

    /// <summary>The host's network namespace: ports the container listens on are the host's.</summary>
    public static Network Host { get; } = new(NetworkKind.Host, null, null);

    /// <summary>Private, host or named.</summary>
    public NetworkKind Kind { get; }

    /// <summary>The user-defined network's name; null for <see cref="Private"/> and <see cref="Host"/>.</summary>
    public string? Name { get; }

    /// <summary>The network object given to <see cref="Join"/>, if any (the backend may need more than its name).</summary>
    public INetwork? Source { get; }

    /// <summary>The user-defined network called <paramref name="name"/>; it must exist when the container is created.</summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty.</exception>
    public static Network Named(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return new Network(NetworkKind.Named, name, null);
    }

    /// <summary>The user-defined network <paramref name="network"/> (Testcontainers' <c>WithNetwork(INetwork)</c>).</summary>
    public static Network Join(INetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentException.ThrowIfNullOrWhiteSpace(network.Name, nameof(network));
        return new Network(NetworkKind.Named, network.Name, network);
    }

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        NetworkKind.Private => "private",
        NetworkKind.Host => "host",
        _ => Name!,
    };
}
