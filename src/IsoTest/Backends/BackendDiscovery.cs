using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;

namespace IsoTest;

/// <summary>
/// Finds the backend providers the application references: those registered in code
/// (<see cref="ContainerBackends.Register"/>), and those named by <see cref="IsoTestBackendAttribute"/> on an
/// assembly that is loaded or that the application's dependency manifest (<c>*.deps.json</c>) lists as
/// depending on IsoTest. No type or assembly name is hard-coded: a backend is found because it is referenced.
/// </summary>
internal static class BackendDiscovery
{
    private static readonly ConcurrentDictionary<Type, IContainerBackendProvider> s_registered = new();
    private static readonly Lazy<IReadOnlyList<IContainerBackendProvider>> s_discovered = new(Scan, LazyThreadSafetyMode.ExecutionAndPublication);

    public static void Register(IContainerBackendProvider provider) => s_registered.TryAdd(provider.GetType(), provider);

    /// <summary>Every provider of <paramref name="kind"/>: registered ones first, then discovered ones (one per provider class).</summary>
    public static IReadOnlyList<IContainerBackendProvider> Providers(BackendKind kind) =>
        [.. s_registered.Values.Concat(s_discovered.Value).Where(p => p.Kind == kind).DistinctBy(p => p.GetType())];

    private static List<IContainerBackendProvider> Scan()
    {
        var assemblies = new Dictionary<string, Assembly>(StringComparer.OrdinalIgnoreCase);
        foreach (var loaded in AppDomain.CurrentDomain.GetAssemblies())
        {
            assemblies.TryAdd(loaded.GetName().Name ?? "", loaded);
        }

        foreach (var name in AssembliesDependingOnIsoTest())
        {
            if (assemblies.ContainsKey(name))
            {
                continue;
            }

            try
            {
                assemblies[name] = Assembly.Load(new AssemblyName(name));
            }
            catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
            {
                // Listed but not deployed (e.g. a reference assembly only): it offers no backend.
            }
        }

        var providers = new List<IContainerBackendProvider>();
        foreach (var assembly in assemblies.Values)
        {
            if (assembly.IsDynamic)
            {
                continue;
            }

            foreach (var attribute in assembly.GetCustomAttributes<IsoTestBackendAttribute>())
            {
                providers.Add(Instantiate(attribute.ProviderType));
            }
        }

        return providers;
    }

    private static IContainerBackendProvider Instantiate(Type type)
    {
        if (!typeof(IContainerBackendProvider).IsAssignableFrom(type))
        {
            throw new BackendUnavailableException(
                $"[assembly: IsoTestBackend(typeof({type.FullName}))] in {type.Assembly.GetName().Name}: {type.Name} is not an IContainerBackendProvider; that package does not match IsoTest {typeof(BackendDiscovery).Assembly.GetName().Version}.");
        }

        return (IContainerBackendProvider)Activator.CreateInstance(type)!;
    }

    /// <summary>
    /// The runtime assemblies of every library in the application's dependency manifests that depends on
    /// the IsoTest library. Assemblies load lazily, so a referenced backend may not be loaded yet.
    /// </summary>
    internal static IEnumerable<string> AssembliesDependingOnIsoTest()
    {
        var core = typeof(BackendDiscovery).Assembly.GetName().Name!;
        var files = (AppContext.GetData("APP_CONTEXT_DEPS_FILES") as string)?.Split(';', StringSplitOptions.RemoveEmptyEntries) ?? [];
        return files.Where(File.Exists).SelectMany(f => AssembliesDependingOn(File.ReadAllBytes(f), core)).Distinct(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Reads one <c>deps.json</c>: <c>targets.&lt;framework&gt;.&lt;library/version&gt;</c> with <c>dependencies</c> and <c>runtime</c>.</summary>
    internal static List<string> AssembliesDependingOn(ReadOnlySpan<byte> depsJson, string library)
    {
        var names = new List<string>();
        using var document = JsonDocument.Parse(depsJson.ToArray());
        if (!document.RootElement.TryGetProperty("targets", out var targets) || targets.ValueKind != JsonValueKind.Object)
        {
            return names;
        }

        foreach (var target in targets.EnumerateObject())
        {
            if (target.Value.ValueKind != JsonValueKind.Object)
            {
                continue;
            }

            foreach (var lib in target.Value.EnumerateObject())
            {
                if (lib.Value.ValueKind == JsonValueKind.Object
                    && lib.Value.TryGetProperty("dependencies", out var dependencies) && dependencies.ValueKind == JsonValueKind.Object
                    && dependencies.TryGetProperty(library, out _)
                    && lib.Value.TryGetProperty("runtime", out var runtime) && runtime.ValueKind == JsonValueKind.Object)
                {
                    names.AddRange(runtime.EnumerateObject()
                        .Where(r => r.Name.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
                        .Select(r => Path.GetFileNameWithoutExtension(r.Name)));
                }
            }
        }

        return names;
    }
}
