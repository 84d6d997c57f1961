using System.Reflection;
using IsoTest.Xunit.Fixtures;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit.Sdk;

/// <summary>
/// Owns the class-lifetime containers (removed when the class's last test has run) and lets the test class's
/// constructor take <see cref="IContainer"/> parameters: each gets a <see cref="ContainerSlot"/>, filled per test.
/// </summary>
internal sealed class ContainerTestClassRunner : XunitTestClassRunner
{
    private readonly FixtureScopes _scopes;
    private readonly ContainerScope _scope;

    public ContainerTestClassRunner(
        ITestClass testClass,
        IReflectionTypeInfo @class,
        IEnumerable<IXunitTestCase> testCases,
        IMessageSink diagnosticMessageSink,
        IMessageBus messageBus,
        ITestCaseOrderer testCaseOrderer,
        ExceptionAggregator aggregator,
        CancellationTokenSource cancellationTokenSource,
        IDictionary<Type, object> collectionFixtureMappings,
        FixtureScopes scopes)
        : base(testClass, @class, testCases, diagnosticMessageSink, messageBus, testCaseOrderer, aggregator, cancellationTokenSource, collectionFixtureMappings)
    {
        _scope = new ContainerScope(Lifetime.Class, $"class {@class.Type.Name}");
        _scopes = scopes with { Class = _scope };
    }

    protected override bool TryGetConstructorArgument(ConstructorInfo constructor, int index, ParameterInfo parameter, out object argumentValue)
    {
        if (parameter.ParameterType == typeof(IContainer))
        {
            argumentValue = new ContainerSlot(parameter);
            return true;
        }

        return base.TryGetConstructorArgument(constructor, index, parameter, out argumentValue);
    }

    protected override Task<RunSummary> RunTestMethodAsync(ITestMethod testMethod, IReflectionMethodInfo method, IEnumerable<IXunitTestCase> testCases, object[] constructorArguments) =>
        new ContainerTestMethodRunner(
            testMethod, Class, method, testCases, DiagnosticMessageSink, MessageBus, new ExceptionAggregator(Aggregator), CancellationTokenSource, constructorArguments, _scopes).RunAsync();

    protected override async Task BeforeTestClassFinishedAsync()
    {
        await base.BeforeTestClassFinishedAsync();
        if (await FixtureScopes.EndAsync(_scope) is { } failure)
        {
            Aggregator.Add(failure);
        }
    }
}
