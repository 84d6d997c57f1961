using System.Reflection;
using System.Runtime.ExceptionServices;
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

    /// <summary>
    /// The engine lives in another assembly that references this one, so it is found by name.
    /// It must offer a public static <c>Create()</c> returning an <see cref="IContainerBackend"/>
    /// (preferred), or else a public parameterless constructor; either throws
    /// <see cref="BackendUnavailableException"/> when the engine cannot run on this machine.
    /// </summary>
    internal const string EngineTypeName = "IsoTest.Engine.EngineBackend, IsoTest.Engine";

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
    public static IContainerBackend Create(BackendKind kind) => kind switch
    {
        BackendKind.Engine => CreateEngine(),
        BackendKind.Docker => CreateDocker(),
        BackendKind.Auto => CreateAuto(CreateEngine, CreateDocker, Log),
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

    private static IContainerBackend CreateDocker() => Docker.DockerBackend.Create();

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
            log?.Invoke($"IsoTest: {EnvironmentVariable}=auto picked Docker, because the built-in engine cannot run here: {engineProblem.Message}");
            return docker;
        }
        catch (BackendUnavailableException dockerProblem)
        {
            throw new BackendUnavailableException(
                $"No backend can run here ({EnvironmentVariable}=auto).\n  engine: {engineProblem.Message}\n  docker: {dockerProblem.Message}",
                new AggregateException(engineProblem, dockerProblem));
        }
    }

    private static IContainerBackend CreateEngine()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new BackendUnavailableException(
                $"The built-in engine runs on Linux only, not on {RuntimeInformation.OSDescription}: use Docker ({EnvironmentVariable}=docker).");
        }

        return CreateEngine(EngineTypeName);
    }

    /// <summary>Creates the engine backend from its assembly-qualified type name (a parameter so tests can point it elsewhere).</summary>
    internal static IContainerBackend CreateEngine(string typeName)
    {
        var type = Type.GetType(typeName, throwOnError: false);
        if (type is null)
        {
            throw new BackendUnavailableException(
                $"The built-in engine (type {typeName}) is not deployed with this application: " +
                $"reference the IsoTest.Engine package, or use Docker ({EnvironmentVariable}=docker).");
        }

        object? backend;
        try
        {
            var create = type.GetMethod("Create", BindingFlags.Public | BindingFlags.Static, Type.EmptyTypes);
            backend = create is not null && typeof(IContainerBackend).IsAssignableFrom(create.ReturnType)
                ? create.Invoke(null, null)
                : Activator.CreateInstance(type);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            // Let the engine's own BackendUnavailableException (with its reason) through unwrapped.
            ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
        catch (MissingMethodException e)
        {
            throw new BackendUnavailableException(
                $"{type.FullName} has neither a public static Create() nor a public parameterless constructor: this IsoTest.Engine does not match IsoTest {typeof(ContainerBackends).Assembly.GetName().Version}.", e);
        }

        return backend as IContainerBackend
            ?? throw new BackendUnavailableException($"{type.FullName} is not an IContainerBackend: this IsoTest.Engine does not match this IsoTest.");
    }
}
