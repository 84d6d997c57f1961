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
}

/// <summary>One container's network, as the agent is to set it up. Owns the namespace descriptor until disposed (after the spawn).</summary>
internal sealed class NetworkAttachment(NetnsMode mode, SafeFileHandle? namespaceFd = null, IReadOnlyList<MountSpec>? mounts = null) : IDisposable
{
    public NetnsMode Mode { get; } = mode;

    /// <summary>Files the driver binds into the container (a member's /etc/hosts and /etc/resolv.conf), before the user's mounts.</summary>
    public IReadOnlyList<MountSpec> Mounts { get; } = mounts ?? [];

    /// <summary>True when the container joined user-defined networks: <see cref="INetworkDriver.Detach"/> takes it off them.</summary>
    public bool Joined => Mounts.Count > 0;

    /// <summary>The namespace to join (<see cref="NetnsMode.Join"/>); null otherwise.</summary>
    public SafeFileHandle? Namespace { get; } = namespaceFd;

    /// <summary>True when the container has a namespace of its own, so a published port needs a forwarder on the host.</summary>
    public bool NeedsForwarding => Mode != NetnsMode.Host;

    public void Dispose() => Namespace?.Dispose();
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
    NetworkAttachment Attach(ContainerSpec spec, string containerId, IReadOnlyList<string> names);

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
