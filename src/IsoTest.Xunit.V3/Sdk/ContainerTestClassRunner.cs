using System.Reflection;
using IsoTest.Xunit.Fixtures;
using Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit.Sdk;

/// <summary>
/// Owns one class's class-lifetime containers (removed when the class's last test has run) and lets the test class's
/// constructor take <see cref="IContainer"/> parameters: each gets a <see cref="ContainerSlot"/>, filled per test.
/// </summary>
internal sealed class ContainerTestClassRunner : XunitTestClassRunner
{
    private readonly ContainerScope _scope;
    private readonly FixtureScopes _scopes;

    public ContainerTestClassRunner(FixtureScopes scopes, IXunitTestClass testClass)
    {
        _scope = new ContainerScope(Lifetime.Class, $"class {testClass.Class.Name}");
        _scopes = scopes with { Class = _scope };
    }

    protected override ValueTask<object?> GetConstructorArgument(XunitTestClassRunnerContext ctxt, ConstructorInfo constructor, int index, ParameterInfo parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        return parameter.ParameterType == typeof(IContainer)
            ? new(new ContainerSlot(parameter))
            : base.GetConstructorArgument(ctxt, constructor, index, parameter);
    }

    protected override ValueTask<RunSummary> RunTestMethod(XunitTestClassRunnerContext ctxt, IXunitTestMethod? testMethod, IReadOnlyCollection<IXunitTestCase> testCases)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        if (testMethod is null)
        {
            return base.RunTestMethod(ctxt, testMethod, testCases);
        }

        return new ContainerTestMethodRunner(_scopes).Run(
            testMethod, testCases, ctxt.ExplicitOption, ctxt.MessageBus, ctxt.Aggregator.Clone(), ctxt.CancellationTokenSource,
            ctxt.ParallelMode, ctxt.Scheduler, ctxt.ConstructorArguments ?? [], ctxt.ClassFixtureMappings);
    }

    protected override async ValueTask<bool> OnTestClassFinished(XunitTestClassRunnerContext ctxt, RunSummary summary)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        if (await FixtureScopes.EndAsync(_scope) is { } failure)
        {
            ctxt.Aggregator.Add(failure);
        }

        return await base.OnTestClassFinished(ctxt, summary);
    }
}
