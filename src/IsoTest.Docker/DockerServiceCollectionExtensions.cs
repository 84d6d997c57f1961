using IsoTest;
using IsoTest.Docker;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Docker backend with a service collection.</summary>
public static class DockerServiceCollectionExtensions
{
    /// <summary>
    /// Offers the Docker backend to <c>AddIsoTest</c> (which then chooses among the registered backends by
    /// <c>IsoTestOptions.Backend</c> or <c>ISOTEST_BACKEND</c>). A referenced package is found without this call;
    /// it makes the choice explicit and independent of how the application is deployed.
    /// </summary>
    /// <param name="services">The service collection.</param>
    public static IServiceCollection AddIsoTestDocker(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IContainerBackendProvider, DockerBackendProvider>());
        return services;
    }
}
