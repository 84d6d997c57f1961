namespace IsoTest;

/// <summary>
/// What a backend package (IsoTest.Engine, IsoTest.Docker) offers IsoTest: the kind it is and a way to create
/// it. The package names its provider with <see cref="IsoTestBackendAttribute"/> on its assembly, so IsoTest
/// finds every backend the application references; <c>ISOTEST_BACKEND</c> and <c>AddIsoTest</c> choose among them.
/// </summary>
public interface IContainerBackendProvider
{
    /// <summary>The kind of backend this provider creates (<see cref="BackendKind.Engine"/> or <see cref="BackendKind.Docker"/>).</summary>
    BackendKind Kind { get; }

    /// <summary>Creates a new backend; the caller owns (and disposes) it.</summary>
    /// <exception cref="BackendUnavailableException">It cannot run here; the message says why and what to do.</exception>
    IContainerBackend Create();
}

/// <summary>
/// Names the <see cref="IContainerBackendProvider"/> an assembly ships (a public class with a public
/// parameterless constructor). IsoTest reads it from the assemblies the application references.
/// </summary>
/// <param name="providerType">The provider class.</param>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class IsoTestBackendAttribute(Type providerType) : Attribute
{
    /// <summary>The provider class.</summary>
    public Type ProviderType { get; } = providerType ?? throw new ArgumentNullException(nameof(providerType));
}
