using IsoTest.Xunit.Fixtures;
using Xunit;
using Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit.Sdk;

/// <summary>One test's run: xunit's context plus its containers (null when it needs none).</summary>
internal sealed class ContainerTestRunnerContext(
    IXunitTest test,
    ExplicitOption explicitOption,
    IMessageBus messageBus,
    ExceptionAggregator aggregator,
    CancellationTokenSource cancellationTokenSource,
    ParallelMode parallelMode,
    ExecutionScheduler scheduler,
    IReadOnlyCollection<IBeforeAfterTestAttribute> beforeAfterTestAttributes,
    object?[] constructorArguments,
    FixtureMappingManager caseFixtureMappings,
    TestContainers? containers,
    FixtureScopes scopes)
    : XunitTestRunnerBaseContext<IXunitTest>(
        test, explicitOption, messageBus, aggregator, cancellationTokenSource, parallelMode, scheduler, beforeAfterTestAttributes, constructorArguments, caseFixtureMappings)
{
    public TestContainers? Containers { get; } = containers;

    public FixtureScopes Scopes { get; } = scopes;
}

/// <summary>
/// Runs one test with its containers (<see cref="TestContainers"/>): started before the test class is created, passed
/// as constructor and method arguments, per-test ones removed afterwards, their output written to the test's output
/// (<see cref="TestContext.Current"/>'s <see cref="ITestOutputHelper"/>) when it failed or when asked. Every problem
/// fails the test through the aggregator.
/// </summary>
internal sealed class ContainerTestRunner(FixtureScopes scopes) : XunitTestRunnerBase<ContainerTestRunnerContext, IXunitTest>
{
    public async ValueTask<RunSummary> Run(
        IXunitTest test,
        IMessageBus messageBus,
        object?[] constructorArguments,
        ExplicitOption explicitOption,
        ExceptionAggregator aggregator,
        CancellationTokenSource cancellationTokenSource,
        ParallelMode parallelMode,
        ExecutionScheduler scheduler,
        IReadOnlyCollection<IBeforeAfterTestAttribute> beforeAfterAttributes,
        FixtureMappingManager caseFixtureMappings)
    {
        var method = test.TestMethod.Method;
        var testClass = test.TestMethod.TestClass.Class;
        var collectionDefinition = test.TestCase.TestCollection.CollectionDefinition;
        var containers = TestContainers.For(testClass, method, collectionDefinition, test.TestDisplayName, constructorArguments, test.TestMethodArguments);
        if (containers is not null)
        {
            // The test carries the arguments its method is invoked with: the given ones and a place for each container,
            // filled when they have started; and a name that shows the containers' definitions, not xunit's ???.
            test = new XunitTest(
                test.TestCase,
                test.TestMethod,
                test.DisableParallelization,
                test.Explicit,
                test.SkipReason,
                test.SkipType,
                test.SkipUnless,
                test.SkipWhen,
                FixtureDisplayName.For(test.TestDisplayName, testClass, method, collectionDefinition),
                test.TestLabel,
                test.UniqueID,
                test.Traits,
                test.Timeout,
                containers.MethodArguments);
            constructorArguments = containers.ConstructorArguments;
        }

        await using var ctxt = new ContainerTestRunnerContext(
            test, explicitOption, messageBus, aggregator, cancellationTokenSource, parallelMode, scheduler, beforeAfterAttributes, constructorArguments,
            caseFixtureMappings, containers, scopes);
        await ctxt.InitializeAsync();
        return await Run(ctxt);
    }

    protected override async ValueTask<TimeSpan> RunTest(ContainerTestRunnerContext ctxt)
    {
        ArgumentNullException.ThrowIfNull(ctxt);
        if (ctxt.Containers is not { } containers)
        {
            return await base.RunTest(ctxt);
        }

        try
        {
            var problems = await containers.StartAsync(ctxt.Scopes, ctxt.CancellationTokenSource.Token);
            foreach (var problem in problems)
            {
                ctxt.Aggregator.Add(problem);
            }

            // With a problem in the aggregator xunit neither creates the test class nor invokes the test.
            return problems.Count == 0 ? await base.RunTest(ctxt) : TimeSpan.Zero;
        }
        finally
        {
            if (await containers.EndAsync() is { } removal)
            {
                ctxt.Aggregator.Add(removal);
            }
        }
    }

    protected override ValueTask<string> GetTestOutput(ContainerTestRunnerContext ctxt)
    {
        ArgumentNullException.ThrowIfNull(ctxt);

        // Written through the test's own output helper, after what the test wrote, so it is part of the result's output.
        if (ctxt.Containers?.Output(ctxt.Aggregator.HasExceptions) is { Length: > 0 } output)
        {
            if (TestContext.Current.TestOutputHelper is { } helper)
            {
                helper.Write(output);
            }
            else
            {
                return new(output);
            }
        }

        return base.GetTestOutput(ctxt);
    }
}
