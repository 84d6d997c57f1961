using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Networking;

/// <summary>How the init agent arranges a container's network namespace (the <c>netns</c> spec record, native/PROTOCOL.md).</summary>
internal enum NetnsMode
{
    /// <summary>Stay in the host's network namespace.</summary>
    Host = 0,

    /// <summary>Make a new one (lo up) while cloning.</summary>
    New = 1,

    /// <summary>Join the one the engine passes as the agent's fd 4.</summary>
    Join = 2,

    /// <summary>Rootless networks: join the user namespace on fd 5 (the container's, made by the network holder), then the network namespace on fd 4 it owns.</summary>
    JoinWithUser = 3,
}

/// <summary>One container's network, as the agent is to set it up. Owns the namespace descriptor until disposed (after the spawn).</summary>
internal sealed class NetworkAttachment(NetnsMode mode, SafeFileHandle? namespaceFd = null, IReadOnlyList<MountSpec>? mounts = null, SafeFileHandle? userNamespace = null) : IDisposable
{
    public NetnsMode Mode { get; } = mode;

    /// <summary>Files the driver binds into the container (a member's /etc/hosts and /etc/resolv.conf), before the user's mounts.</summary>
    public IReadOnlyList<MountSpec> Mounts { get; } = mounts ?? [];

    /// <summary>True when the container joined user-defined networks: <see cref="INetworkDriver.Detach"/> takes it off them.</summary>
    public bool Joined => Mounts.Count > 0;

    /// <summary>The namespace to join (<see cref="NetnsMode.Join"/>); null otherwise.</summary>
    public SafeFileHandle? Namespace { get; } = namespaceFd;

    /// <summary>The user namespace owning <see cref="Namespace"/>, to join first (<see cref="NetnsMode.JoinWithUser"/>); null otherwise.</summary>
    public SafeFileHandle? UserNamespace { get; } = userNamespace;

    /// <summary>The agent's descriptors from fd 4 on (native/PROTOCOL.md): the network namespace, then its user namespace.</summary>
    public SafeFileHandle[] AgentFds => (Namespace, UserNamespace) switch
    {
        ({ } netns, { } userns) => [netns, userns],
        ({ } netns, null) => [netns],
        _ => [],
    };

    /// <summary>True when the container has a namespace of its own, so a published port needs a forwarder on the host.</summary>
    public bool NeedsForwarding => Mode != NetnsMode.Host;

    public void Dispose()
    {
        Namespace?.Dispose();
        UserNamespace?.Dispose();
    }
}

/// <summary>
/// Everything the engine does about networks, behind one seam (like <c>Cgroups/ICgroupDriver</c>): the real
/// driver makes namespaces, a recording fake in the tests records what was asked.
/// </summary>
internal interface INetworkDriver : IDisposable
{
    /// <summary>What stops this driver from attaching a container of <paramref name="spec"/> to its networks, worded with the fix; null when nothing does.</summary>
    string? Check(ContainerSpec spec);

    /// <summary>Marks a container creation in flight until disposed (a pool pauses its refills meanwhile).</summary>
    IDisposable? BeginCreate(ContainerSpec spec);

    /// <summary>
    /// The namespace arrangement for one container, on its user-defined networks already (answering to
    /// <paramref name="names"/> there); the caller disposes it once the agent has it.
    /// </summary>
    /// <exception cref="NetworkException">A network is disposed or unknown, a name is taken, or no address is free; nothing is left half-made.</exception>
    /// <param name="spec">The container.</param>
    /// <param name="containerId">Its id.</param>
    /// <param name="names">Its name and hostname: what the other members resolve to it, with its aliases.</param>
    /// <param name="memberMaps">Rootless: the maps of the member's user namespace, as ids of the network holder's (<see cref="RootFs.IdMaps.InHolder"/>); null as root.</param>
    NetworkAttachment Attach(ContainerSpec spec, string containerId, IReadOnlyList<string> names, RootFs.IdMaps? memberMaps);

    /// <summary>Takes a container off its user-defined networks (after <see cref="Attach"/> said it joined some).</summary>
    void Detach(string containerId);

    /// <summary>Creates a user-defined network of 2^(32-<paramref name="prefixLength"/>) addresses.</summary>
    /// <exception cref="NetworkException">The name is taken, no subnet is free, or the kernel refused.</exception>
    INetwork CreateNetwork(NetworkSpec spec, int prefixLength);

    /// <summary>Live user-defined networks.</summary>
    int NetworkCount { get; }

    /// <summary>Removes every user-defined network (the engine is being disposed).</summary>
    ValueTask RemoveNetworksAsync();
}
