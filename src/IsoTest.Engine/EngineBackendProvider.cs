using IsoTest;
using IsoTest.Engine;

[assembly: IsoTestBackend(typeof(EngineBackendProvider))]

namespace IsoTest.Engine;

/// <summary>
/// Makes the built-in engine known to IsoTest: found through its <see cref="IsoTestBackendAttribute"/> when the
/// application references IsoTest.Engine, or registered with <c>services.AddIsoTestEngine()</c>.
/// </summary>
public sealed class EngineBackendProvider : IContainerBackendProvider
{
    /// <inheritdoc/>
    public BackendKind Kind => BackendKind.Engine;

    /// <inheritdoc/>
    /// <exception cref="BackendUnavailableException">Not Linux, the init agent is missing, or (rootless) user namespaces are forbidden.</exception>
    public IContainerBackend Create() => new EngineBackend();
}
