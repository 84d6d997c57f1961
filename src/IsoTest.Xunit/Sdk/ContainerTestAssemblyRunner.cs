using IsoTest.Xunit.Fixtures;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit.Sdk;

/// <summary>Owns the assembly-lifetime containers: removed when the last collection has run.</summary>
internal sealed class ContainerTestAssemblyRunner(
    ITestAssembly testAssembly,
    IEnumerable<IXunitTestCase> testCases,
    IMessageSink diagnosticMessageSink,
    IMessageSink executionMessageSink,
    ITestFrameworkExecutionOptions executionOptions)
    : XunitTestAssemblyRunner(testAssembly, testCases, diagnosticMessageSink, executionMessageSink, executionOptions)
{
    private readonly ContainerScope _scope = new(Lifetime.Assembly, $"assembly {Path.GetFileNameWithoutExtension(testAssembly.Assembly.AssemblyPath)}")
    {
        // Per-test containers started ahead, for the tests this run will run.
        Prestarts = FixturePrestarts.For(testCases
            .Where(c => string.IsNullOrEmpty(c.SkipReason))
            .Select(c => (c.TestMethod.TestClass.Class.ToRuntimeType(), c.TestMethod.Method.ToRuntimeMethod(),
                (c.TestMethod.TestClass.TestCollection.CollectionDefinition as IReflectionTypeInfo)?.Type))),
    };

    protected override Task<RunSummary> RunTestCollectionAsync(IMessageBus messageBus, ITestCollection testCollection, IEnumerable<IXunitTestCase> testCases, CancellationTokenSource cancellationTokenSource) =>
        new ContainerTestCollectionRunner(
            testCollection, testCases, DiagnosticMessageSink, messageBus, TestCaseOrderer, new ExceptionAggregator(Aggregator), cancellationTokenSource, _scope).RunAsync();

    protected override async Task BeforeTestAssemblyFinishedAsync()
    {
        await base.BeforeTestAssemblyFinishedAsync();
        if (await FixtureScopes.EndAsync(_scope) is { } failure)
        {
            Aggregator.Add(failure);
        }
    }

    public override void Dispose()
    {
        // Normally ended in BeforeTestAssemblyFinishedAsync; this covers a run that never got there.
        _ = FixtureScopes.EndAsync(_scope).GetAwaiter().GetResult();
        base.Dispose();
    }
}
