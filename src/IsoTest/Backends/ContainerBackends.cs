using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace IsoTest;

/// <summary>
/// Finds the backend that runs containers when none is given: <c>ISOTEST_BACKEND</c> = <c>engine</c>,
/// <c>docker</c> or <c>auto</c> (the default: the built-in engine on Linux where it can run, else Docker).
/// </summary>
public static class ContainerBackends
{
    /// <summary>The environment variable that chooses the backend.</summary>
    public const string EnvironmentVariable = "ISOTEST_BACKEND";

    private static readonly Lazy<IContainerBackend> s_default = new(() => Create(FromEnvironment()), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// The process-wide backend chosen by <c>ISOTEST_BACKEND</c>, created on first use and shared by every
    /// builder that was not given one (<c>WithBackend</c>). A failure to create it is remembered, not retried.
    /// </summary>
    /// <exception cref="BackendUnavailableException">No backend can run here, or <c>ISOTEST_BACKEND</c> holds an unknown value.</exception>
    public static IContainerBackend Default => s_default.Value;

    /// <summary>The backend <c>ISOTEST_BACKEND</c> asks for (<see cref="BackendKind.Auto"/> when unset).</summary>
    /// <exception cref="BackendUnavailableException"><c>ISOTEST_BACKEND</c> holds an unknown value.</exception>
    public static BackendKind FromEnvironment() => Parse(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary>Creates a new backend of the given kind; the caller owns (and disposes) it.</summary>
    /// <exception cref="BackendUnavailableException">That backend cannot run here; the message says why and what to do.</exception>
    public static IContainerBackend Create(BackendKind kind) => Create(kind, BackendDiscovery.Providers);

    /// <summary>
    /// Makes a backend package known in code, for hosts where it is not found by itself (an application that
    /// loads IsoTest without a dependency manifest, e.g. a single-file app). Backends the application references
    /// are found without it, through their <see cref="IsoTestBackendAttribute"/>.
    /// </summary>
    public static void Register(IContainerBackendProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        BackendDiscovery.Register(provider);
    }

    /// <summary>Creates a backend of <paramref name="kind"/> from the providers <paramref name="providers"/> lists for each kind.</summary>
    internal static IContainerBackend Create(BackendKind kind, Func<BackendKind, IReadOnlyList<IContainerBackendProvider>> providers) => kind switch
    {
        BackendKind.Engine => CreateOne(BackendKind.Engine, providers),
        BackendKind.Docker => CreateOne(BackendKind.Docker, providers),
        BackendKind.Auto => CreateAuto(() => CreateOne(BackendKind.Engine, providers), () => CreateOne(BackendKind.Docker, providers), Log),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Use BackendKind.Auto, Engine or Docker."),
    };

    /// <summary>Parses a value of <c>ISOTEST_BACKEND</c>; empty means auto.</summary>
    internal static BackendKind Parse(string? value)
    {
        var text = value?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            return BackendKind.Auto;
        }

        return text.ToLowerInvariant() switch
        {
            "auto" => BackendKind.Auto,
            "engine" => BackendKind.Engine,
            "docker" => BackendKind.Docker,
            _ => throw new BackendUnavailableException(
                $"{EnvironmentVariable}='{value}' is not a backend IsoTest knows: set it to 'engine', 'docker' or 'auto' (the default, also when unset)."),
        };
    }

    /// <summary>
    /// Where IsoTest says which backend <c>auto</c> picked and why (one line per choice). Standard error by
    /// default; set it to route the line into your logging, or to <c>_ => { }</c> to silence it.
    /// </summary>
    public static Action<string> Log { get; set; } = message => Console.Error.WriteLine(message);

    internal static IContainerBackend CreateAuto(Func<IContainerBackend> createEngine, Func<IContainerBackend> createDocker, Action<string>? log = null)
    {
        BackendUnavailableException engineProblem;
        try
        {
            var engine = createEngine();
            log?.Invoke($"IsoTest: {EnvironmentVariable}=auto picked the built-in engine.");
            return engine;
        }
        catch (BackendUnavailableException e)
        {
            engineProblem = e;
        }

        try
        {
            var docker = createDocker();
            var reason = $"IsoTest: {EnvironmentVariable}=auto picked Docker, because the built-in engine cannot run here: {engineProblem.Message}";
            log?.Invoke(reason);
            // stderr is hidden by `dotnet test`: a container that fails on this fallback carries the reason too.
            s_fallbackReasons.AddOrUpdate(docker, reason);
            return docker;
        }
        catch (BackendUnavailableException dockerProblem)
        {
            throw new BackendUnavailableException(
                $"No backend can run here ({EnvironmentVariable}=auto).\n  engine: {engineProblem.Message}\n  docker: {dockerProblem.Message}",
                new AggregateException(engineProblem, dockerProblem));
        }
    }

    private static readonly ConditionalWeakTable<IContainerBackend, string> s_fallbackReasons = new();

    /// <summary>Why <c>auto</c> picked <paramref name="backend"/> instead of the engine, when it did.</summary>
    internal static string? FallbackReason(IContainerBackend backend) => s_fallbackReasons.TryGetValue(backend, out var reason) ? reason : null;

    private static IContainerBackend CreateOne(BackendKind kind, Func<BackendKind, IReadOnlyList<IContainerBackendProvider>> providers)
    {
        if (kind == BackendKind.Engine && !OperatingSystem.IsLinux())
        {
            throw new BackendUnavailableException(
                $"The built-in engine runs on Linux only, not on {RuntimeInformation.OSDescription}: use Docker ({EnvironmentVariable}=docker, package IsoTest.Docker).");
        }

        var found = providers(kind);
        if (found.Count == 0)
        {
            var package = kind == BackendKind.Engine ? "IsoTest.Engine" : "IsoTest.Docker";
            var other = kind == BackendKind.Engine ? "docker" : "engine";
            throw new BackendUnavailableException(
                $"The {kind.ToString().ToLowerInvariant()} backend is not referenced by this application: add the {package} package " +
                $"(dotnet add package {package}), or use the other backend ({EnvironmentVariable}={other}).");
        }

        return found[0].Create();
    }
}
