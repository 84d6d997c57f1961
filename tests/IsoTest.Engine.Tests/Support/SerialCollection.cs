namespace IsoTest.Engine.Tests.Support;

/// <summary>Tests that observe process-wide state (every agent of this process) run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial";
}
