using IsoTest.Xunit.Fixtures;
using Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit.Sdk;

/// <summary>Owns the assembly-lifetime containers of one run: removed when the last collection has run.</summary>
internal sealed class ContainerTestAssemblyRunner(IXunitTestAssembly testAssembly) : XunitTestAssemblyRunner
{
    // Made when the run starts: only then are the test cases known, which the pool of per-test containers counts.
    private ContainerScope? _scope;

    private ContainerScope Scope => _scope ?? throw new InvalidOperationException("the assembly scope is made when the run starts");

    protected override async ValueTask<bool> OnTestAssemblyStarting(XunitTestAssemblyRunnerContext ctxt)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        // Per-test containers started ahead, for the tests this run will run (known only once the run starts).
        _scope = new ContainerScope(Lifetime.Assembly, $"assembly {testAssembly.AssemblyName}")
        {
            Prestarts = FixturePrestarts.For(ctxt.TestCases
                .Where(c => string.IsNullOrEmpty(c.SkipReason))
                .Select(c => (c.TestMethod.TestClass.Class, c.TestMethod.Method, c.TestCollection.CollectionDefinition))),
        };
        return await base.OnTestAssemblyStarting(ctxt);
    }

    protected override ValueTask<RunSummary> RunTestCollection(XunitTestAssemblyRunnerContext ctxt, IXunitTestCollection testCollection, IReadOnlyCollection<IXunitTestCase> testCases)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        return new ContainerTestCollectionRunner(Scope, testCollection).Run(
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
