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
internal sealed class NetworkAttachment(NetnsMode mode, SafeFileHandle? namespaceFd = null) : IDisposable
{
    public NetnsMode Mode { get; } = mode;

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
    /// <summary>What stops this driver from attaching a container to <paramref name="network"/>, worded with the fix; null when nothing does.</summary>
    string? Check(Network network);

    /// <summary>Marks a container creation on <paramref name="network"/> in flight until disposed (a pool pauses its refills meanwhile).</summary>
    IDisposable? BeginCreate(Network network);

    /// <summary>The namespace arrangement for one container on <paramref name="network"/>; the caller disposes it once the agent has it.</summary>
    NetworkAttachment Attach(Network network);
}
