using IsoTest.Xunit.Fixtures;
using Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit.Sdk;

/// <summary>Owns one collection's collection-lifetime containers: removed when the collection's last class has run.</summary>
internal sealed class ContainerTestCollectionRunner(ContainerScope assemblyScope, IXunitTestCollection testCollection) : XunitTestCollectionRunner
{
    private readonly ContainerScope _scope = new(Lifetime.Collection, $"collection '{testCollection.TestCollectionDisplayName}'");

    protected override ValueTask<RunSummary> RunTestClass(XunitTestCollectionRunnerContext ctxt, IXunitTestClass? testClass, IReadOnlyCollection<IXunitTestCase> testCases)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        if (testClass is null)
        {
            return base.RunTestClass(ctxt, testClass, testCases);
        }

        return new ContainerTestClassRunner(new FixtureScopes(assemblyScope, _scope, null), testClass).Run(
            testClass, testCases, ctxt.ExplicitOption, ctxt.MessageBus, ctxt.Aggregator.Clone(), ctxt.CancellationTokenSource,
            ctxt.ParallelMode, ctxt.Scheduler, ctxt.CollectionFixtureMappings);
    }

    protected override async ValueTask<bool> OnTestCollectionFinished(XunitTestCollectionRunnerContext ctxt, RunSummary summary)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        if (await FixtureScopes.EndAsync(_scope) is { } failure)
        {
            ctxt.Aggregator.Add(failure);
        }

        return await base.OnTestCollectionFinished(ctxt, summary);
    }
}
