using IsoTest.Xunit.Fixtures;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit.Sdk;

/// <summary>Owns the collection-lifetime containers: removed when the collection's last class has run.</summary>
internal sealed class ContainerTestCollectionRunner(
    ITestCollection testCollection,
    IEnumerable<IXunitTestCase> testCases,
    IMessageSink diagnosticMessageSink,
    IMessageBus messageBus,
    ITestCaseOrderer testCaseOrderer,
    ExceptionAggregator aggregator,
    CancellationTokenSource cancellationTokenSource,
    ContainerScope assemblyScope)
    : XunitTestCollectionRunner(testCollection, testCases, diagnosticMessageSink, messageBus, testCaseOrderer, aggregator, cancellationTokenSource)
{
    private readonly ContainerScope _scope = new(Lifetime.Collection, $"collection '{testCollection.DisplayName}'");

    protected override Task<RunSummary> RunTestClassAsync(ITestClass testClass, IReflectionTypeInfo @class, IEnumerable<IXunitTestCase> testCases) =>
        new ContainerTestClassRunner(
            testClass, @class, testCases, DiagnosticMessageSink, MessageBus, TestCaseOrderer, new ExceptionAggregator(Aggregator), CancellationTokenSource,
            CollectionFixtureMappings, new FixtureScopes(assemblyScope, _scope, null)).RunAsync();

    protected override async Task BeforeTestCollectionFinishedAsync()
    {
        await base.BeforeTestCollectionFinishedAsync();
        if (await FixtureScopes.EndAsync(_scope) is { } failure)
        {
            Aggregator.Add(failure);
        }
    }
}
