using System.Reflection;
using IsoTest.Xunit.Fixtures;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit.Sdk;

/// <summary>
/// Runs one test with its containers (<see cref="TestContainers"/>): started before the test class is created, passed
/// as constructor and method arguments, per-test ones removed afterwards, their output added to the test's output when
/// it failed or when asked. Never throws: every problem fails the test through the aggregator.
/// </summary>
internal sealed class ContainerTestRunner(
    ITest test,
    IMessageBus messageBus,
    Type testClass,
    object[] constructorArguments,
    MethodInfo testMethod,
    object[] testMethodArguments,
    string skipReason,
    IReadOnlyList<BeforeAfterTestAttribute> beforeAfterAttributes,
    ExceptionAggregator aggregator,
    CancellationTokenSource cancellationTokenSource,
    FixtureScopes scopes)
    : XunitTestRunner(test, messageBus, testClass, constructorArguments, testMethod, testMethodArguments, skipReason, beforeAfterAttributes, aggregator, cancellationTokenSource)
{
    protected override async Task<Tuple<decimal, string>> InvokeTestAsync(ExceptionAggregator aggregator)
    {
        var collectionDefinition = (Test.TestCase.TestMethod.TestClass.TestCollection.CollectionDefinition as IReflectionTypeInfo)?.Type;
        if (TestContainers.For(TestClass, TestMethod, collectionDefinition, Test.DisplayName, ConstructorArguments, TestMethodArguments) is not { } containers)
        {
            return await base.InvokeTestAsync(aggregator);
        }

        var output = "";
        decimal time = 0;
        try
        {
            var problems = await containers.StartAsync(scopes, CancellationTokenSource.Token);
            foreach (var problem in problems)
            {
                aggregator.Add(problem);
            }

            if (problems.Count == 0)
            {
                ConstructorArguments = containers.ConstructorArguments!;
                TestMethodArguments = containers.MethodArguments!;
                (time, output) = await base.InvokeTestAsync(aggregator);
            }
        }
        catch (Exception e)
        {
            aggregator.Add(e);
        }
        finally
        {
            if (await containers.EndAsync() is { } removal)
            {
                aggregator.Add(removal);
            }
        }

        var containerOutput = containers.Output(aggregator.HasExceptions);
        return Tuple.Create(time, containerOutput.Length == 0 ? output : output.Length == 0 || output.EndsWith('\n') ? output + containerOutput : output + "\n" + containerOutput);
    }
}
