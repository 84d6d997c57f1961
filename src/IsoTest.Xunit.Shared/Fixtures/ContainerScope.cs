namespace IsoTest.Xunit.Fixtures;

/// <summary>
/// The containers of one lifetime instance (a test, a class, a collection, the assembly): started on first
/// request (concurrent requests share one start, a failed start is remembered, not retried) and all removed
/// when the scope is disposed. Thread-safe: tests of a collection or assembly run in parallel.
/// </summary>
internal sealed class ContainerScope(Lifetime lifetime, string description) : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<FixtureKey, Task<IContainer>> _containers = [];
    private readonly CancellationTokenSource _ending = new();
    private bool _disposed;

    public Lifetime Lifetime { get; } = lifetime;

    /// <summary>E.g. "class CacheTests"; for messages.</summary>
    public string Description { get; } = description;

    /// <summary>The assembly scope's pool of per-test containers started ahead; removed with this scope.</summary>
    public FixturePrestarts? Prestarts { get; init; }

    /// <summary>
    /// The container for <paramref name="declaration"/>, starting it if this scope has none yet, or taking one started
    /// ahead from <paramref name="prestarts"/> (a per-test scope).
    /// </summary>
    public Task<IContainer> GetOrStartAsync(FixtureDeclaration declaration, FixturePrestarts? prestarts = null)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return Task.FromException<IContainer>(new ContainerFixtureException(
                    $"{declaration}: the {Description} scope has already ended; its containers are removed."));
            }

            if (!_containers.TryGetValue(declaration.Key, out var start))
            {
                // Not awaited under the lock: the start runs on its own; callers await the shared task.
                start = prestarts?.TakeAsync(declaration, _ending.Token) ?? FixtureStarter.StartAsync(declaration, _ending.Token);
                _containers[declaration.Key] = start;
            }

            return start;
        }
    }

    /// <summary>Removes every container started here (in parallel), also those still starting.</summary>
    /// <exception cref="AggregateException">Some could not be removed: each inner exception names one.</exception>
    public async ValueTask DisposeAsync()
    {
        Task<IContainer>[] starts;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            starts = [.. _containers.Values];
        }

        // Starts still under way give up; the starter removes what they created.
        await _ending.CancelAsync().ConfigureAwait(false);
        var removals = starts.Select(RemoveAsync).ToArray();
        var failures = (await Task.WhenAll(removals).ConfigureAwait(false)).OfType<Exception>().ToArray();
        if (Prestarts is not null)
        {
            await Prestarts.DisposeAsync().ConfigureAwait(false);
        }

        _ending.Dispose();
        if (failures.Length > 0)
        {
            throw new AggregateException($"IsoTest could not remove {failures.Length} container(s) of {Description}: remove them by hand (`isotest ps`), and report it.", failures);
        }
    }

    private static async Task<Exception?> RemoveAsync(Task<IContainer> start)
    {
        IContainer container;
        try
        {
            container = await start.ConfigureAwait(false);
        }
        catch
        {
            return null; // never started: the starter already cleaned up, and the failure was reported to the tests
        }

        try
        {
            await container.DisposeAsync().ConfigureAwait(false);
            return null;
        }
        catch (Exception e)
        {
            return new ContainerFixtureException($"Container {container.Name} ({container.Id}) could not be removed: {e.Message}", e);
        }
    }
}
