using IsoTest.Xunit.Fixtures;
using Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit.Sdk;

/// <summary>Owns the assembly-lifetime containers of one run: removed when the last collection has run.</summary>
internal sealed class ContainerTestAssemblyRunner(IXunitTestAssembly testAssembly) : XunitTestAssemblyRunner
{
    private readonly ContainerScope _scope = new(Lifetime.Assembly, $"assembly {testAssembly.AssemblyName}");

    protected override ValueTask<RunSummary> RunTestCollection(XunitTestAssemblyRunnerContext ctxt, IXunitTestCollection testCollection, IReadOnlyCollection<IXunitTestCase> testCases)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        return new ContainerTestCollectionRunner(_scope, testCollection).Run(
            testCollection, testCases, ctxt.ExplicitOption, ctxt.MessageBus, ctxt.Aggregator.Clone(), ctxt.CancellationTokenSource,
            ctxt.ParallelMode, ctxt.Scheduler, ctxt.AssemblyFixtureMappings);
    }

    protected override async ValueTask<bool> OnTestAssemblyFinished(XunitTestAssemblyRunnerContext ctxt, RunSummary summary)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        if (await FixtureScopes.EndAsync(_scope) is { } failure)
        {
            ctxt.Aggregator.Add(failure);
        }

        return await base.OnTestAssemblyFinished(ctxt, summary);
    }
}
