using IsoTest;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers IsoTest with a service collection.</summary>
public static class IsoTestServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="IContainerBackend"/> (singleton, created on first use and disposed with the
    /// provider; chosen among the backends registered with <c>AddIsoTestEngine()</c>/<c>AddIsoTestDocker()</c> and
    /// those the application references), <see cref="IContainerBuilderFactory"/> (singleton) and <see cref="ContainerBuilder"/>
    /// (transient, bound to that backend). Registrations made earlier win.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Chooses the backend and clock; by default <c>ISOTEST_BACKEND</c> and the system clock.</param>
    public static IServiceCollection AddIsoTest(this IServiceCollection services, Action<IsoTestOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = new IsoTestOptions();
        configure?.Invoke(options);
        if (options.Backend is { } kind && !Enum.IsDefined(kind))
        {
            throw new ArgumentOutOfRangeException(nameof(configure), kind, "IsoTestOptions.Backend: use BackendKind.Auto, Engine or Docker.");
        }

        // Copied, so changing the options object after registration changes nothing.
        var backendKind = options.Backend;
        var backendFactory = options.BackendFactory;
        var clock = options.TimeProvider;

        services.TryAddSingleton<IContainerBackend>(sp => backendFactory?.Invoke(sp) ?? CreateBackend(sp, backendKind ?? ContainerBackends.FromEnvironment()));
        services.TryAddSingleton<IContainerBuilderFactory>(sp => new ContainerBuilderFactory(
            sp.GetRequiredService<IContainerBackend>(),
            clock ?? sp.GetService<TimeProvider>() ?? TimeProvider.System));
        services.TryAddTransient(sp => sp.GetRequiredService<IContainerBuilderFactory>().CreateBuilder());
        return services;
    }

    /// <summary>
    /// Backends registered in the container (<c>AddIsoTestEngine()</c>, <c>AddIsoTestDocker()</c>) come first;
    /// those the application references are found as without DI.
    /// </summary>
    private static IContainerBackend CreateBackend(IServiceProvider services, BackendKind kind)
    {
        var registered = services.GetServices<IContainerBackendProvider>().ToList();
        return ContainerBackends.Create(kind, k => [.. registered.Where(p => p.Kind == k).Concat(BackendDiscovery.Providers(k)).DistinctBy(p => p.GetType())]);
    }
}
