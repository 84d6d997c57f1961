namespace IsoTest.Modules.PostgreSql;

/// <summary>A PostgreSQL server in a container; dispose it to remove it (and every write made to it).</summary>
public sealed class PostgreSqlContainer : IAsyncDisposable
{
    private readonly ContainerBuilder _builder;
    private IContainer? _container;

    internal PostgreSqlContainer(ContainerBuilder builder, string database, string username, string password)
    {
        _builder = builder;
        Database = database;
        Username = username;
        Password = password;
    }

    /// <summary>The database the connection string names.</summary>
    public string Database { get; }

    /// <summary>The superuser's name.</summary>
    public string Username { get; }

    /// <summary>The superuser's password.</summary>
    public string Password { get; }

    /// <summary>The running container.</summary>
    /// <exception cref="InvalidOperationException">Not started yet.</exception>
    public IContainer Container => _container ?? throw new InvalidOperationException("The PostgreSQL container is not started: call StartAsync first.");

    /// <summary>Starts it; returns once it accepts connections.</summary>
    /// <exception cref="InvalidOperationException">Already started.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_container is not null)
        {
            throw new InvalidOperationException("The PostgreSQL container is already started.");
        }

        _container = await _builder.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>An Npgsql connection string: host, port, database, user name and password.</summary>
    public string GetConnectionString() => PostgreSqlBuilder.ConnectionString(Container, Database, Username, Password);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_container is { } container)
        {
            await container.DisposeAsync().ConfigureAwait(false);
        }
    }
}
