using System.Reflection;
using System.Text;

namespace IsoTest.Xunit.Fixtures;

/// <summary>
/// The containers of one test, whichever xunit runs it: binds the test's <see cref="IContainer"/> constructor and method
/// parameters to the declarations in reach, starts every declaration at once (shared ones only the first time), removes
/// the per-test ones afterwards and formats their output for the test's output. Each xunit version's test runner calls it.
/// </summary>
internal sealed class TestContainers
{
    private readonly IReadOnlyList<FixtureDeclaration> _declarations;
    private readonly ContainerScope _testScope;
    private readonly object?[] _constructorArguments;
    private readonly object?[] _methodArguments;
    private readonly (FixtureDeclaration? Declaration, int Index)[] _constructorSlots;
    private readonly (FixtureDeclaration? Declaration, int Index)[] _methodSlots;
    private readonly List<(FixtureDeclaration Declaration, IContainer Container)> _started = [];
    private readonly List<IReadOnlyList<LogLine>> _logs = [];
    private readonly List<Exception> _bindingProblems;
    private DateTimeOffset _testStarted;

    private TestContainers(
        IReadOnlyList<FixtureDeclaration> declarations,
        string testName,
        object?[] constructorArguments,
        object?[] methodArguments,
        (FixtureDeclaration? Declaration, int Index)[] constructorSlots,
        (FixtureDeclaration? Declaration, int Index)[] methodSlots,
        List<Exception> bindingProblems)
    {
        _declarations = declarations;
        _testScope = new ContainerScope(Lifetime.Test, $"test {testName}");
        _constructorArguments = constructorArguments;
        _methodArguments = methodArguments;
        _constructorSlots = constructorSlots;
        _methodSlots = methodSlots;
        _bindingProblems = bindingProblems;
    }

    /// <summary>The constructor arguments to create the test class with: each <see cref="ContainerSlot"/> replaced by its container once <see cref="StartAsync"/> succeeded.</summary>
    public object?[] ConstructorArguments => _constructorArguments;

    /// <summary>The test method's arguments: the given ones (a theory row's data), then its containers once <see cref="StartAsync"/> succeeded.</summary>
    public object?[] MethodArguments => _methodArguments;

    /// <summary>
    /// What a test needs, or null when it needs nothing of IsoTest (no declaration in reach, no container parameter):
    /// then xunit runs it as it always does.
    /// </summary>
    /// <param name="testClass">The test class.</param>
    /// <param name="method">The test method.</param>
    /// <param name="collectionDefinition">The test collection's <c>[CollectionDefinition]</c> class, if any.</param>
    /// <param name="testName">The test's display name, for messages.</param>
    /// <param name="constructorArguments">The class runner's arguments, with a <see cref="ContainerSlot"/> for each IContainer parameter.</param>
    /// <param name="given">The arguments xunit has for the method (a theory row's data).</param>
    public static TestContainers? For(Type testClass, MethodInfo method, Type? collectionDefinition, string testName, object?[] constructorArguments, object?[]? given)
    {
        var declarations = FixtureCatalog.For(testClass, method, collectionDefinition);
        var parameters = method.GetParameters();
        given ??= [];
        if (declarations.Count == 0 && !constructorArguments.Any(a => a is ContainerSlot) && parameters.Length <= given.Length)
        {
            return null;
        }

        var problems = new List<Exception>();
        var constructorSlots = new List<(FixtureDeclaration?, int)>();
        for (var i = 0; i < constructorArguments.Length; i++)
        {
            if (constructorArguments[i] is ContainerSlot slot)
            {
                constructorSlots.Add((BindOne(slot.Parameter, $"the constructor of {testClass.Name}"), i));
            }
        }

        var methodArguments = new object?[Math.Max(parameters.Length, given.Length)];
        Array.Copy(given, methodArguments, given.Length);
        var methodSlots = new List<(FixtureDeclaration?, int)>();
        for (var i = given.Length; i < parameters.Length; i++)
        {
            if (parameters[i].ParameterType != typeof(IContainer))
            {
                // Not ours to fill: xunit reports the missing value as it always does.
                methodSlots.Clear();
                methodArguments = [.. given];
                break;
            }

            methodSlots.Add((BindOne(parameters[i], $"test method {testClass.Name}.{method.Name}"), i));
        }

        return new TestContainers(declarations, testName, [.. constructorArguments], methodArguments, [.. constructorSlots], [.. methodSlots], problems);

        FixtureDeclaration? BindOne(ParameterInfo parameter, string owner)
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

    /// <summary>
    /// Starts (or joins the start of) every declared container at once and fills the arguments. Returns every problem
    /// (binding mistakes, each failed start); empty when the test may run.
    /// </summary>
    public async Task<IReadOnlyList<Exception>> StartAsync(FixtureScopes scopes, CancellationToken cancellationToken)
    {
        _testStarted = DateTimeOffset.UtcNow;
        if (_bindingProblems.Count > 0)
        {
            return _bindingProblems;
        }

        var problems = new List<Exception>();
        var starts = _declarations.Select(d => (Declaration: d, Task: Start(d, scopes))).ToArray();
        try
        {
            await Task.WhenAll(starts.Select(s => s.Task)).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            problems.Add(new OperationCanceledException("The test run was cancelled while this test's containers were starting."));
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
                _started.Add((declaration, task.Result));
                containers[declaration.Key] = task.Result;
            }
            else if (task.IsFaulted)
            {
                problems.Add(task.Exception.InnerExceptions.Count == 1 ? task.Exception.InnerException! : task.Exception);
            }
        }

        if (problems.Count == 0)
        {
            foreach (var (declaration, index) in _constructorSlots)
            {
                _constructorArguments[index] = containers[declaration!.Key];
            }

            foreach (var (declaration, index) in _methodSlots)
            {
                _methodArguments[index] = containers[declaration!.Key];
            }
        }

        return problems;
    }

    // A per-test container may come from the assembly's pool of containers started ahead; a shared one starts once in its scope.
    private Task<IContainer> Start(FixtureDeclaration declaration, FixtureScopes scopes)
    {
        var scope = scopes.For(declaration.Lifetime, _testScope);
        return scope == _testScope ? scope.GetOrStartAsync(declaration, scopes.Assembly.Prestarts) : scope.GetOrStartAsync(declaration);
    }

    /// <summary>Keeps the output of the containers this test used, then removes its per-test containers; the failure to remove, if any.</summary>
    public async Task<Exception?> EndAsync()
    {
        // Read output before removal: a removed container may no longer have any (Docker).
        _logs.AddRange(_started.Skip(_logs.Count).Select(s => ContainerOutput.Snapshot(s.Container, s.Declaration.Lifetime, _testStarted)));
        return await FixtureScopes.EndAsync(_testScope).ConfigureAwait(false);
    }

    /// <summary>The containers' output for the test's output: all of them when the test failed, else those declared with ShowOutput.</summary>
    public string Output(bool failed)
    {
        var output = new StringBuilder();
        for (var i = 0; i < _logs.Count; i++)
        {
            if (failed || _started[i].Declaration.ShowOutput)
            {
                ContainerOutput.Append(output, _started[i].Declaration, _started[i].Container, _logs[i]);
            }
        }

        return output.ToString();
    }
}
