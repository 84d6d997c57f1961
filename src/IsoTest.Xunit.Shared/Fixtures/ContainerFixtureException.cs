namespace IsoTest.Xunit.Fixtures;

/// <summary>A test's <see cref="ContainerFixtureAttribute"/> container could not be provided; the message says which, why and what to do.</summary>
internal sealed class ContainerFixtureException : Exception
{
    public ContainerFixtureException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
