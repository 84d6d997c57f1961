using IsoTest.Xunit.Fixtures;
using Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit.Sdk;

/// <summary>Runs xunit's own test case kinds (facts, data rows, theories enumerated at run time) with <see cref="ContainerTestCaseRunner"/>; other kinds as xunit does.</summary>
internal sealed class ContainerTestMethodRunner(FixtureScopes scopes) : XunitTestMethodRunner
{
    protected override async ValueTask<RunSummary> RunTestCase(XunitTestMethodRunnerContext ctxt, IXunitTestCase testCase)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        ArgumentNullException.ThrowIfNull(testCase);

        // Exact types: subclasses (execution errors, cultured cases, third-party cases) run their own way.
        if (testCase.GetType() != typeof(XunitTestCase) && testCase.GetType() != typeof(XunitDelayEnumeratedTheoryTestCase))
        {
            return await base.RunTestCase(ctxt, testCase);
        }

        var aggregator = ctxt.Aggregator.Clone();
        var tests = await aggregator.RunAsync(testCase.CreateTests, []);
        if (aggregator.HasExceptions)
        {
            // Data that cannot be enumerated, dynamic skips: xunit reports them its way.
            return await base.RunTestCase(ctxt, testCase);
        }

        return await new ContainerTestCaseRunner(scopes).Run(
            testCase, tests, ctxt.MessageBus, aggregator, ctxt.CancellationTokenSource, ctxt.ParallelMode, ctxt.Scheduler,
            testCase.TestCaseDisplayName, testCase.SkipReason, ctxt.ExplicitOption, ctxt.ConstructorArguments, ctxt.MethodFixtureMappings);
    }
}

/// <summary>xunit's case runner with <see cref="ContainerTestRunner"/> as the test runner.</summary>
internal sealed class ContainerTestCaseRunner(FixtureScopes scopes) : XunitTestCaseRunner
{
    protected override ValueTask<RunSummary> RunTest(XunitTestCaseRunnerContext ctxt, IXunitTest test)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        return new ContainerTestRunner(scopes).Run(
            test, ctxt.MessageBus, ctxt.ConstructorArguments, ctxt.ExplicitOption, ctxt.Aggregator.Clone(), ctxt.CancellationTokenSource,
            ctxt.ParallelMode, ctxt.Scheduler, ctxt.BeforeAfterTestAttributes, ctxt.CaseFixtureMappings);
    }
}
