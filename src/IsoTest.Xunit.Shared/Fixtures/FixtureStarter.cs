using System.Reflection;
using System.Text;

namespace IsoTest.Xunit.Fixtures;

/// <summary>Creates a definition, starts its container and seeds it, within the definition's start timeout.</summary>
internal static class FixtureStarter
{
    /// <summary>
    /// How long past its own timeout a start may run before the test stops waiting for it. Well-behaved backends
    /// honour the cancelled token long before; this only stops a backend that ignores it from hanging the run.
    /// </summary>
    private static readonly TimeSpan HardStopGrace = TimeSpan.FromSeconds(5);

    /// <summary>Starts the container; on any failure nothing is left running and the exception names the fixture and the reason.</summary>
    /// <exception cref="ContainerFixtureException">It could not be started.</exception>
    public static async Task<IContainer> StartAsync(FixtureDeclaration declaration, CancellationToken scopeToken)
    {
        if (declaration.Problem is { } problem)
        {
            throw new ContainerFixtureException($"{declaration}: {problem}");
        }

        ContainerDefinition definition;
        try
        {
            definition = (ContainerDefinition)Activator.CreateInstance(declaration.Definition)!;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw new ContainerFixtureException($"{declaration}: the constructor of {declaration.Definition.FullName} threw: {e.InnerException.Message}", e.InnerException);
        }

        var timeout = definition.StartTimeout;
        using var startToken = CancellationTokenSource.CreateLinkedTokenSource(scopeToken);
        startToken.CancelAfter(timeout);
        var start = StartAndSeedAsync(declaration, definition, startToken.Token);
        try
        {
            return await start.WaitAsync(timeout + HardStopGrace, scopeToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            RemoveIfItStartsAnyway(start);
            if (scopeToken.IsCancellationRequested)
            {
                throw new ContainerFixtureException(
                    $"{declaration} ({Describe(declaration.Lifetime)}): the start was abandoned because the test run was cancelled or the scope that owns the container ended.", e);
            }

            if (e is TimeoutException || (e is OperationCanceledException && startToken.IsCancellationRequested))
            {
                throw new ContainerFixtureException(
                    $"{declaration} did not start within {timeout.TotalSeconds:0.###} s ({declaration.Definition.Name}.StartTimeout): the backend or the readiness wait hangs. " +
                    $"Check the container's command and wait strategy, or override StartTimeout if it is just slow.", e);
            }

            if (e is ContainerFixtureException)
            {
                throw;
            }

            throw new ContainerFixtureException($"{declaration} could not start: {e.Message}", e);
        }
    }

    /// <summary>Docker's name rules; unique so parallel tests (and parallel test runs) never collide.</summary>
    internal static string UniqueName(FixtureDeclaration declaration)
    {
        var text = new StringBuilder("isotest-");
        foreach (var c in (declaration.Name ?? declaration.Definition.Name).ToLowerInvariant())
        {
            text.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' ? c : '-');
        }

        if (text.Length > 40)
        {
            text.Length = 40;
        }

        return text.Append('-').Append(Guid.NewGuid().ToString("N").AsSpan(0, 12)).ToString();
    }

    internal static string Describe(Lifetime lifetime) => lifetime switch
    {
        Lifetime.Test => "per test",
        Lifetime.Class => "shared by the class",
        Lifetime.Collection => "shared by the collection",
        _ => "shared by the assembly",
    };

    private static async Task<IContainer> StartAndSeedAsync(FixtureDeclaration declaration, ContainerDefinition definition, CancellationToken cancellationToken)
    {
        var builder = new ContainerBuilder()
            .WithName(UniqueName(declaration))
            .WithLabel("isotest.fixture", declaration.Definition.FullName ?? declaration.Definition.Name)
            .WithLabel("isotest.lifetime", declaration.Lifetime.ToString().ToLowerInvariant());
        var configured = definition.Configure(builder)
            ?? throw new ContainerFixtureException($"{declaration}: {declaration.Definition.Name}.Configure returned null: return the builder it was given, extended.");

        var container = await configured.StartAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await definition.OnStartedAsync(container, cancellationToken).ConfigureAwait(false);
            return container;
        }
        catch (Exception e)
        {
            var tail = ContainerOutput.Tail(container);
            await container.DisposeAsync().ConfigureAwait(false);
            throw new ContainerFixtureException(
                $"{declaration}: {declaration.Definition.Name}.OnStartedAsync failed on container {container.Name} ({e.GetType().Name}: {e.Message}); the container was removed." +
                (tail.Length == 0 ? "" : "\n--- last output ---\n" + tail), e);
        }
    }

    private static void RemoveIfItStartsAnyway(Task<IContainer> start) =>
        _ = start.ContinueWith(
            static t =>
            {
                if (t.IsCompletedSuccessfully)
                {
                    _ = t.Result.DisposeAsync().AsTask();
                }
                else
                {
                    _ = t.Exception; // observed: the failure was already reported as the timeout
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
}
