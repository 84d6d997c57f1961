namespace IsoTest.Cli;

/// <summary>Where the command gets its container backend.</summary>
internal static class Backends
{
    /// <summary>The built-in Linux engine, in this process (there is no daemon yet).</summary>
    public static IContainerBackend CreateEngine() =>
#if ISOTEST_ENGINE_MISSING
        // Stand-in while this branch is built without the engine (see IsoTest.Cli.csproj).
        throw new BackendUnavailableException("this isotest was built without the engine (IsoTest.Engine has no EngineBackend yet): build it from a tree that has the engine");
#else
        IsoTest.Engine.EngineBackend.Create();
#endif
}
