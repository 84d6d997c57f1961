namespace IsoTest.Modules.Http;

/// <summary>A fake HTTP service in a container; dispose it to remove it.</summary>
public sealed class HttpServerContainer : IAsyncDisposable
{
    private readonly ContainerBuilder _builder;
    private IContainer? _container;

    internal HttpServerContainer(ContainerBuilder builder) => _builder = builder;

    /// <summary>The running container (its output has one line per request: httpd runs with <c>-v</c>).</summary>
    /// <exception cref="InvalidOperationException">Not started yet.</exception>
    public IContainer Container => _container ?? throw new InvalidOperationException("The HTTP server container is not started: call StartAsync first.");

    /// <summary>Starts it; returns once it answers.</summary>
    /// <exception cref="InvalidOperationException">Already started.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_container is not null)
        {
            throw new InvalidOperationException("The HTTP server container is already started.");
        }

        _container = await _builder.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>http://127.0.0.1:PORT/</c>, for an <c>HttpClient.BaseAddress</c>.</summary>
    public Uri GetBaseAddress() => HttpServerBuilder.GetBaseAddress(Container);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_container is { } container)
        {
            await container.DisposeAsync().ConfigureAwait(false);
        }
    }
}
