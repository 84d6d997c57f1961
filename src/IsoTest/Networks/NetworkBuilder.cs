using System.Text.RegularExpressions;

namespace IsoTest;

/// <summary>
/// Declares a user-defined network and creates it (Testcontainers' <c>NetworkBuilder</c>). Immutable:
/// every <c>With...</c> returns a new builder.
/// </summary>
/// <example>
/// <code>
/// await using var network = await new NetworkBuilder().BuildAsync();
/// await using var db = await new ContainerBuilder().FromHost().WithCommand(...)
///     .WithNetwork(network).WithNetworkAliases("db").StartAsync();
/// // another container on the network reaches it as db:5432
/// </code>
/// </example>
public sealed partial class NetworkBuilder
{
    private readonly string? _name;
    private readonly bool _outbound;
    private readonly IContainerBackend? _backend;

    /// <summary>A network with a unique name, no outbound access, on the default backend.</summary>
    public NetworkBuilder()
    {
    }

    private NetworkBuilder(string? name, bool outbound, IContainerBackend? backend)
    {
        (_name, _outbound, _backend) = (name, outbound, backend);
    }

    /// <summary>The network's name (Docker's rules: a letter or digit, then letters, digits, <c>_ . -</c>); unique by default.</summary>
    public NetworkBuilder WithName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return new(name, _outbound, _backend);
    }

    /// <summary>
    /// Lets members reach beyond the host (NAT). Off by default, so tests cannot reach the internet by accident;
    /// the host itself is reached only through <see cref="INetwork.ExposeHostPortsAsync"/>.
    /// </summary>
    public NetworkBuilder WithOutboundAccess(bool enabled = true) => new(_name, enabled, _backend);

    /// <summary>The backend that runs the network; by default <see cref="ContainerBackends.Default"/>. Its containers must use the same one.</summary>
    public NetworkBuilder WithBackend(IContainerBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return new(_name, _outbound, backend);
    }

    /// <summary>Creates the network.</summary>
    /// <exception cref="NetworkException">The name is invalid or taken, the backend has no networks, or it could not be created.</exception>
    public async Task<INetwork> BuildAsync(CancellationToken cancellationToken = default)
    {
        var name = _name ?? $"isotest-net-{Guid.NewGuid().ToString("N")[..10]}";
        if (!IsValidName(name))
        {
            throw new NetworkException(name, $"'{name}' is not a valid network name: use 1-64 characters, a letter or digit first, then letters, digits, '_', '.' or '-' (or omit WithName for a unique one).");
        }

        var backend = _backend ?? ContainerBackends.Default;
        if (backend is not INetworkBackend networks)
        {
            throw new NetworkException(name, $"The {backend.Name} backend cannot create networks: use the built-in engine or Docker.");
        }

        return await networks.CreateNetworkAsync(new NetworkSpec(name, _outbound), cancellationToken).ConfigureAwait(false);
    }

    internal static bool IsValidName(string name) => name.Length <= 64 && NamePattern().IsMatch(name);

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")]
    private static partial Regex NamePattern();
}
