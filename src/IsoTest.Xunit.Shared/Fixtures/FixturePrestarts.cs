namespace IsoTest.Xunit.Fixtures;

/// <summary>
/// Starts per-test containers ahead of the tests that will take them, so a test waits for its fresh container only
/// when the pool ran dry. Each container is still made for exactly one test: a started one is taken once, from a
/// queue, by the next test that asks for its definition, and nobody uses it before. The pool knows how many tests of
/// the run will still ask for each definition (the assembly runner counts them), so it never starts one that no test
/// will take, except where a counted test does not run after all (skipped at run time, cancelled); those are removed
/// with the pool at the end of the assembly. One per assembly; thread-safe.
/// </summary>
internal sealed class FixturePrestarts : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<FixtureKey, int> _remaining;
    private readonly Dictionary<FixtureKey, Queue<Task<IContainer>>> _ready = [];
    private readonly Dictionary<Type, int> _depths = [];
    private readonly CancellationTokenSource _ending = new();
    private bool _disposed;

    /// <param name="expected">How many tests of this run will ask for each per-test declaration.</param>
    public FixturePrestarts(IEnumerable<FixtureKey> expected)
    {
        _remaining = expected.GroupBy(k => k).ToDictionary(g => g.Key, g => g.Count());
    }

    /// <summary>The pool for the tests a run will run (each: its class, method and collection definition; skipped ones left out).</summary>
    public static FixturePrestarts For(IEnumerable<(Type Class, System.Reflection.MethodInfo Method, Type? Collection)> tests) =>
        new(tests.SelectMany(t => FixtureCatalog.For(t.Class, t.Method, t.Collection))
            .Where(d => d.Lifetime == Lifetime.Test)
            .Select(d => d.Key));

    /// <summary>
    /// The container for one test: a prestarted one when it is there (started, starting, or failed: a failure is this
    /// test's, as it would have been had it started the container itself), else one started now. Either way it then
    /// tops up the queue for the tests still to come.
    /// </summary>
    /// <param name="declaration">A per-test declaration.</param>
    /// <param name="testToken">The test scope's token: cancels a start made for this test (not a prestarted one).</param>
    public Task<IContainer> TakeAsync(FixtureDeclaration declaration, CancellationToken testToken)
    {
        Task<IContainer>? ready;
        lock (_gate)
        {
            var key = declaration.Key;
            var left = _remaining.TryGetValue(key, out var n) ? Math.Max(0, n - 1) : 0;
            _remaining[key] = left;
            if (!_ready.TryGetValue(key, out var queue))
            {
                _ready[key] = queue = new Queue<Task<IContainer>>();
            }

            queue.TryDequeue(out ready);
            var depth = _disposed ? 0 : DepthOf(declaration);
            // Only as many as tests will still take: the queue never holds a container no counted test asks for.
            // Each start runs on the thread pool: Configure is synchronous and may block (a module's template), and
            // this lock must not wait for it.
            while (queue.Count < depth && queue.Count < left)
            {
                queue.Enqueue(Task.Run(() => FixtureStarter.StartAsync(declaration, _ending.Token)));
            }
        }

        return ready ?? FixtureStarter.StartAsync(declaration, testToken);
    }

    /// <summary>Removes every container started ahead that no test took (also those still starting).</summary>
    public async ValueTask DisposeAsync()
    {
        Task<IContainer>[] unused;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            unused = [.. _ready.Values.SelectMany(q => q)];
            _ready.Clear();
        }

        await _ending.CancelAsync().ConfigureAwait(false);
        foreach (var start in unused)
        {
            try
            {
                await (await start.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
            }
            catch
            {
                // Never started (the starter cleaned up), or its removal failed: no test used it, and the engine's
                // own teardown takes what is left when the process ends.
            }
        }

        _ending.Dispose();
    }

    // The definition's own choice (ContainerDefinition.Prestart), read once per definition type.
    private int DepthOf(FixtureDeclaration declaration)
    {
        if (!_depths.TryGetValue(declaration.Definition, out var depth))
        {
            try
            {
                depth = Math.Max(0, ((ContainerDefinition)Activator.CreateInstance(declaration.Definition)!).Prestart);
            }
            catch
            {
                depth = 0; // the starter reports why it cannot be created
            }

            _depths[declaration.Definition] = depth;
        }

        return depth;
    }
}
