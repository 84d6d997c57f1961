using IsoTest;
using IsoTest.Xunit;
using Npgsql;
using Xunit;

[assembly: UseIsoTest]
#if SHARED
[assembly: ContainerFixture(typeof(PgSuite.Postgres))]
#endif

namespace PgSuite;

/// <summary>
/// PostgreSQL from the host's binaries on a copy-on-write view of an initdb'd template, as the PostgreSQL
/// example does (examples/IsoTest.Examples/Postgres): no initdb per test, no writes reach the template.
/// </summary>
public sealed class Postgres : ContainerDefinition
{
    public const int Port = 5432;

    public static string Template { get; } = Environment.GetEnvironmentVariable("PGSUITE_TEMPLATE") is { Length: > 0 } t
        ? t
        : throw new InvalidOperationException("PGSUITE_TEMPLATE is not set: run this suite through `IsoTest.Bench suite`, which runs initdb once and sets it to the template's directory.");

    public static string User { get; } = Environment.GetEnvironmentVariable("PGSUITE_USER") ?? "postgres";

    public static string BinDirectory { get; } = Environment.GetEnvironmentVariable("PGSUITE_BIN") ?? "/usr/local/bin";

    // PGSUITE_PRESTART=N: N servers started ahead (the bench's "prestart" row); else IsoTest's default (none).
    public override int Prestart => int.TryParse(Environment.GetEnvironmentVariable("PGSUITE_PRESTART"), out var n) ? n : DefaultPrestart;

    // The template's parent is mounted, not data/ itself: the root of a copy-on-write mount belongs to root (0755),
    // which PostgreSQL refuses as a data directory; data/ inside keeps its owner and 0700.
    public override ContainerBuilder Configure(ContainerBuilder builder) => builder
        .FromHost()
        .WithUser(User)
        .WithCopyOnWriteMount(Template, "/var/lib/postgresql")
        .WithCommand(Path.Combine(BinDirectory, "postgres"),
            "-D", "/var/lib/postgresql/data", "-k", "/tmp", "-p", $"{Port}", "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=32MB")
        .WithMemoryLimit("256m")
        .WithCpuLimit(1)
        .WithPort(Port)
        .WaitFor(Wait.ForLogMessage("database system is ready to accept connections"));
}

/// <summary>
/// What every test does: its own table, two rows, a sum. A table per test keeps the shared mode honest too.
/// PGSUITE_NPGSQL is appended to the connection string (the bench tries <c>;Server Compatibility Mode=NoTypeLoading</c>).
/// </summary>
internal static class Work
{
    public static async Task RunAsync(IContainer postgres, int n)
    {
        var endpoint = postgres.GetEndpoint(Postgres.Port);
        await using var db = NpgsqlDataSource.Create($"Host={endpoint.Host};Port={endpoint.Port};Username=postgres;Database=postgres;Pooling=false" + Environment.GetEnvironmentVariable("PGSUITE_NPGSQL"));
        await db.CreateCommand($"CREATE TABLE products_{n} (id serial PRIMARY KEY, name text NOT NULL, price numeric NOT NULL)").ExecuteNonQueryAsync();
        await db.CreateCommand($"INSERT INTO products_{n} (name, price) VALUES ('tea', 3.50), ('coffee', {n})").ExecuteNonQueryAsync();
        var total = await db.CreateCommand($"SELECT sum(price) FROM products_{n}").ExecuteScalarAsync();
        Assert.Equal(3.50m + n, total);
    }
}
