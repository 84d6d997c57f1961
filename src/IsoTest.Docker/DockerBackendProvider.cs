using IsoTest;
using IsoTest.Docker;

[assembly: IsoTestBackend(typeof(DockerBackendProvider))]

namespace IsoTest.Docker;

/// <summary>
/// Makes the Docker backend known to IsoTest: found through its <see cref="IsoTestBackendAttribute"/> when the
/// application references IsoTest.Docker, or registered with <c>services.AddIsoTestDocker()</c>.
/// </summary>
public sealed class DockerBackendProvider : IContainerBackendProvider
{
    /// <inheritdoc/>
    public BackendKind Kind => BackendKind.Docker;

    /// <inheritdoc/>
    /// <exception cref="BackendUnavailableException"><c>DOCKER_HOST</c> or the docker context is not a usable endpoint.</exception>
    public IContainerBackend Create() => DockerBackend.Create();
}
