namespace IsoTest.Examples.Postgres;

/// <summary>
/// A PostgreSQL server from the host's binaries, on a private copy-on-write view of the <see cref="PostgresTemplate"/>
/// data directory: it starts in well under a second and every write vanishes with the container.
/// </summary>
public sealed class Postgres : ContainerDefinition
{
    public const int Port = 5432;
    private const string DataDirectory = "/var/lib/postgresql/data";

    public override ContainerBuilder Configure(ContainerBuilder builder) => builder
        .FromHost()
        .WithUser(PostgresTemplate.User)
        // Every test writes to its own private layer over the template; the template never changes.
        .WithCopyOnWriteMount(Path.Combine(PostgresTemplate.Directory, "data"), DataDirectory)
        .WithCommand(Path.Combine(PostgresTemplate.BinDirectory, "postgres"),
            "-D", DataDirectory, "-k", "/tmp", "-p", $"{Port}", "-c", "listen_addresses=127.0.0.1",
            // A test database never needs to survive a crash: skip what makes writes durable.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "shared_buffers=32MB")
        .WithMemoryLimit("256m")
        .WithCpuLimit(1)
        .WithPort(Port)
        .WaitFor(Wait.ForLogMessage("database system is ready to accept connections"));

    /// <summary>An Npgsql connection string for the container (initdb made <c>postgres</c> a superuser with trust auth).</summary>
    public static string ConnectionString(IContainer postgres)
    {
        var endpoint = postgres.GetEndpoint(Port);
        return $"Host={endpoint.Host};Port={endpoint.Port};Username=postgres;Database=postgres";
    }
}
