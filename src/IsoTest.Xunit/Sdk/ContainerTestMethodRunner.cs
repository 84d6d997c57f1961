using IsoTest.Xunit.Fixtures;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit.Sdk;

/// <summary>Runs xunit's own test case kinds (facts, data rows, theories) with container-aware case runners; other kinds as xunit does.</summary>
internal sealed class ContainerTestMethodRunner : XunitTestMethodRunner
{
    private readonly IMessageSink _diagnosticMessageSink;
    private readonly object[] _constructorArguments;
    private readonly FixtureScopes _scopes;

    public ContainerTestMethodRunner(
        ITestMethod testMethod,
        IReflectionTypeInfo @class,
        IReflectionMethodInfo method,
        IEnumerable<IXunitTestCase> testCases,
        IMessageSink diagnosticMessageSink,
        IMessageBus messageBus,
        ExceptionAggregator aggregator,
        CancellationTokenSource cancellationTokenSource,
        object[] constructorArguments,
        FixtureScopes scopes)
        : base(testMethod, @class, method, testCases, diagnosticMessageSink, messageBus, aggregator, cancellationTokenSource, constructorArguments)
    {
        _diagnosticMessageSink = diagnosticMessageSink;
        _constructorArguments = constructorArguments;
        _scopes = scopes;
    }

    protected override Task<RunSummary> RunTestCaseAsync(IXunitTestCase testCase)
    {
        // Exact types: subclasses (ExecutionErrorTestCase, skipped data rows, third-party cases) run their own way.
        if (testCase.GetType() == typeof(XunitTestCase))
        {
            return new ContainerTestCaseRunner(
                testCase, testCase.DisplayName, testCase.SkipReason, _constructorArguments, testCase.TestMethodArguments,
                MessageBus, Aggregator, CancellationTokenSource, _scopes).RunAsync();
        }

        if (testCase.GetType() == typeof(XunitTheoryTestCase))
        {
            return new ContainerTheoryTestCaseRunner(
                testCase, testCase.DisplayName, testCase.SkipReason, _constructorArguments, _diagnosticMessageSink,
                MessageBus, Aggregator, CancellationTokenSource, _scopes).RunAsync();
        }

        return base.RunTestCaseAsync(testCase);
    }
}
