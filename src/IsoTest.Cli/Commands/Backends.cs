namespace IsoTest.Cli.Commands;

/// <summary>Where the command gets its container backend.</summary>
internal static class Backends
{
    /// <summary>The built-in Linux engine, in this process (there is no daemon yet).</summary>
    public static IContainerBackend CreateEngine() =>
        IsoTest.Engine.EngineBackend.Create();
}
