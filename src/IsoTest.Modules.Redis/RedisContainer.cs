namespace IsoTest.Modules.Redis;

/// <summary>A Redis server in a container; dispose it to remove it.</summary>
public sealed class RedisContainer : IAsyncDisposable
{
    private readonly ContainerBuilder _builder;
    private IContainer? _container;

    internal RedisContainer(ContainerBuilder builder, string? password)
    {
        _builder = builder;
        Password = password;
    }

    /// <summary>The password the server requires, or null.</summary>
    public string? Password { get; }

    /// <summary>The running container.</summary>
    /// <exception cref="InvalidOperationException">Not started yet.</exception>
    public IContainer Container => _container ?? throw new InvalidOperationException("The Redis container is not started: call StartAsync first.");

    /// <summary>Starts it; returns once it accepts connections.</summary>
    /// <exception cref="InvalidOperationException">Already started.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_container is not null)
        {
            throw new InvalidOperationException("The Redis container is already started.");
        }

        _container = await _builder.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A StackExchange.Redis configuration string: <c>127.0.0.1:PORT</c>, with <c>,password=...</c> when one is set.</summary>
    public string GetConnectionString() => RedisBuilder.GetConnectionString(Container, Password);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_container is { } container)
        {
            await container.DisposeAsync().ConfigureAwait(false);
        }
    }
}
