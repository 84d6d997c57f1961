namespace IsoTest.Xunit.Fixtures;

/// <summary>The shared scopes a test sees; its own per-test scope is added when it runs.</summary>
internal sealed record FixtureScopes(ContainerScope Assembly, ContainerScope? Collection, ContainerScope? Class)
{
    public ContainerScope For(Lifetime lifetime, ContainerScope test) => lifetime switch
    {
        Lifetime.Class => Class ?? test,
        Lifetime.Collection => Collection ?? Class ?? test,
        Lifetime.Assembly => Assembly,
        _ => test,
    };

    /// <summary>Disposes a scope, turning a failure into an exception for the runner's aggregator.</summary>
    public static async Task<Exception?> EndAsync(ContainerScope? scope)
    {
        if (scope is null)
        {
            return null;
        }

        try
        {
            await scope.DisposeAsync().ConfigureAwait(false);
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }
}
