using IsoTest;
using IsoTest.Engine;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the built-in engine with a service collection.</summary>
public static class EngineServiceCollectionExtensions
{
    /// <summary>
    /// Offers the built-in engine to <c>AddIsoTest</c> (which then chooses among the registered backends by
    /// <c>IsoTestOptions.Backend</c> or <c>ISOTEST_BACKEND</c>). A referenced package is found without this call;
    /// it makes the choice explicit and independent of how the application is deployed.
    /// </summary>
    /// <param name="services">The service collection.</param>
    public static IServiceCollection AddIsoTestEngine(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IContainerBackendProvider, EngineBackendProvider>());
        return services;
    }
}
