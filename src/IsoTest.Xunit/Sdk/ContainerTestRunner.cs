using System.Reflection;
using System.Text;
using IsoTest.Xunit.Fixtures;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit.Sdk;

/// <summary>
/// Runs one test: starts every container in reach of it at once (shared ones only the first time), passes them as
/// constructor and method arguments, runs the test, removes its per-test containers and adds container output to
/// the test's output when it failed or when asked. Never throws: every problem fails the test through the aggregator.
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
        var declarations = FixtureCatalog.For(TestClass, TestMethod, collectionDefinition);
        var parameters = TestMethod.GetParameters();
        var given = TestMethodArguments ?? [];
        var hasSlots = ConstructorArguments.Any(a => a is ContainerSlot);
        if (declarations.Count == 0 && !hasSlots && parameters.Length <= given.Length)
        {
            return await base.InvokeTestAsync(aggregator);
        }

        var testStarted = DateTimeOffset.UtcNow;
        var testScope = new ContainerScope(Lifetime.Test, $"test {Test.DisplayName}");
        var output = new StringBuilder();
        decimal time = 0;
        var started = new List<(FixtureDeclaration Declaration, IContainer Container)>();
        var logs = new List<IReadOnlyList<LogLine>>();
        try
        {
            if (Bind(declarations, parameters, given, aggregator) is { } binding
                && await StartAsync(declarations, testScope, started, aggregator) is { } containers)
            {
                ConstructorArguments = [.. binding.Constructor.Select(a => a is FixtureDeclaration d ? containers[d.Key] : a)];
                TestMethodArguments = [.. binding.Method.Select(a => a is FixtureDeclaration d ? containers[d.Key] : a)];
                var result = await base.InvokeTestAsync(aggregator);
                time = result.Item1;
                output.Append(result.Item2);
            }
        }
        catch (Exception e)
        {
            aggregator.Add(e);
        }
        finally
        {
            // Read output before removal: a removed container may no longer have any (Docker).
            logs.AddRange(started.Select(s => ContainerOutput.Snapshot(s.Container, s.Declaration.Lifetime, testStarted)));
            if (await FixtureScopes.EndAsync(testScope) is { } removal)
            {
                aggregator.Add(removal);
            }
        }

        var failed = aggregator.HasExceptions;
        for (var i = 0; i < started.Count; i++)
        {
            if (failed || started[i].Declaration.ShowOutput)
            {
                ContainerOutput.Append(output, started[i].Declaration, started[i].Container, logs[i]);
            }
        }

        return Tuple.Create(time, output.ToString());
    }

    /// <summary>Arguments with a <see cref="FixtureDeclaration"/> where a container goes; null (and the reason in the aggregator) when a parameter matches nothing.</summary>
    private (object?[] Constructor, object?[] Method)? Bind(IReadOnlyList<FixtureDeclaration> declarations, ParameterInfo[] parameters, object[] given, ExceptionAggregator aggregator)
    {
        var problems = new List<Exception>();
        var constructor = ConstructorArguments.Select(a => a is ContainerSlot slot ? BindOne(slot.Parameter, $"the constructor of {TestClass.Name}") : a).ToArray();
        var method = new object?[Math.Max(parameters.Length, given.Length)];
        Array.Copy(given, method, given.Length);
        for (var i = given.Length; i < parameters.Length; i++)
        {
            if (parameters[i].ParameterType == typeof(IContainer))
            {
                method[i] = BindOne(parameters[i], $"test method {TestClass.Name}.{TestMethod.Name}");
            }
            else
            {
                // Let xunit report the missing value as it always does.
                method = given;
                break;
            }
        }

        foreach (var problem in problems)
        {
            aggregator.Add(problem);
        }

        return problems.Count == 0 ? (constructor, method) : null;

        object? BindOne(ParameterInfo parameter, string owner)
        {
            try
            {
                return FixtureBinder.Bind(parameter, declarations, owner);
            }
            catch (ContainerFixtureException e)
            {
                problems.Add(e);
                return null;
            }
        }
    }

    /// <summary>Starts (or joins the start of) every declared container at once; null (and every failure in the aggregator) unless all started.</summary>
    private async Task<Dictionary<FixtureKey, IContainer>?> StartAsync(
        IReadOnlyList<FixtureDeclaration> declarations, ContainerScope testScope, List<(FixtureDeclaration, IContainer)> started, ExceptionAggregator aggregator)
    {
        var starts = declarations.Select(d => (Declaration: d, Task: scopes.For(d.Lifetime, testScope).GetOrStartAsync(d))).ToArray();
        try
        {
            await Task.WhenAll(starts.Select(s => s.Task)).WaitAsync(CancellationTokenSource.Token);
        }
        catch (OperationCanceledException) when (CancellationTokenSource.IsCancellationRequested)
        {
            aggregator.Add(new OperationCanceledException("The test run was cancelled while this test's containers were starting."));
        }
        catch
        {
            // Each failure is reported below, not just the first one WhenAll throws.
        }

        var containers = new Dictionary<FixtureKey, IContainer>();
        foreach (var (declaration, task) in starts)
        {
            if (task.IsCompletedSuccessfully)
            {
                started.Add((declaration, task.Result));
                containers[declaration.Key] = task.Result;
            }
            else if (task.IsFaulted)
            {
                aggregator.Add(task.Exception.InnerExceptions.Count == 1 ? task.Exception.InnerException! : task.Exception);
            }
        }

        return aggregator.HasExceptions ? null : containers;
    }
}
