using Npgsql;

namespace IsoTest.Examples.Postgres;

/// <summary>A fresh PostgreSQL server per test, started from the template the collection fixture made once.</summary>
[Collection(nameof(PostgresCollection))]
public class PostgresTests
{
    [Fact, ContainerFixture(typeof(Postgres))]
    public async Task Creates_a_table_inserts_and_selects(IContainer postgres)
    {
        await using var db = NpgsqlDataSource.Create(Postgres.ConnectionString(postgres));

        await db.CreateCommand("CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, price numeric NOT NULL)").ExecuteNonQueryAsync();
        await db.CreateCommand("INSERT INTO products (name, price) VALUES ('tea', 3.50), ('coffee', 4.20)").ExecuteNonQueryAsync();
        var total = await db.CreateCommand("SELECT sum(price) FROM products").ExecuteScalarAsync();

        Assert.Equal(7.70m, total);
    }

    // Both tests create the same table and read all of it. Were the database shared, one CREATE TABLE would fail,
    // or one test would read the other's rows.
    [Fact, ContainerFixture(typeof(Postgres))]
    public async Task Alice_sees_only_her_notes(IContainer postgres) =>
        Assert.Equal(["alice: 1", "alice: 2"], await WriteAndReadNotesAsync(postgres, "alice"));

    [Fact, ContainerFixture(typeof(Postgres))]
    public async Task Bob_sees_only_his_notes(IContainer postgres) =>
        Assert.Equal(["bob: 1", "bob: 2"], await WriteAndReadNotesAsync(postgres, "bob"));

    [Fact, ContainerFixture(typeof(Postgres))]
    public async Task Server_runs_as_the_postgres_user_under_the_caps(IContainer postgres)
    {
        await using var db = NpgsqlDataSource.Create(Postgres.ConnectionString(postgres));
        var version = (string?)await db.CreateCommand("SELECT version()").ExecuteScalarAsync();

        var id = await postgres.ExecAsync(["id", "-un"]);
        var stats = await postgres.GetStatsAsync();

        Assert.StartsWith("PostgreSQL", version);
        Assert.Equal(PostgresTemplate.User, id.Stdout.Trim());
        Assert.True(stats.PeakMemoryBytes is null or <= 256L << 20, $"peak memory {stats.PeakMemoryBytes} bytes exceeds the 256m cap");
    }

    // The template has 1 MiB WAL segments (PostgresTemplate): ~4 MiB of rows must still go through, across several.
    [Fact, ContainerFixture(typeof(Postgres))]
    public async Task Writes_past_the_templates_small_wal_segments(IContainer postgres)
    {
        await using var db = NpgsqlDataSource.Create(Postgres.ConnectionString(postgres));
        var before = (string)(await db.CreateCommand("SELECT pg_walfile_name(pg_current_wal_lsn())").ExecuteScalarAsync())!;

        await db.CreateCommand("CREATE TABLE bulk AS SELECT n, repeat('x', 1000) AS body FROM generate_series(1, 4000) AS n").ExecuteNonQueryAsync();
        var after = (string)(await db.CreateCommand("SELECT pg_walfile_name(pg_current_wal_lsn())").ExecuteScalarAsync())!;

        Assert.Equal("1MB", await db.CreateCommand("SHOW wal_segment_size").ExecuteScalarAsync());
        Assert.Equal(4000L, await db.CreateCommand("SELECT count(*) FROM bulk").ExecuteScalarAsync());
        Assert.True(Convert.ToInt64(after[^8..], 16) - Convert.ToInt64(before[^8..], 16) >= 3, $"WAL went from {before} to {after}");
    }

    private static async Task<string[]> WriteAndReadNotesAsync(IContainer postgres, string author)
    {
        await using var db = NpgsqlDataSource.Create(Postgres.ConnectionString(postgres));
        await db.CreateCommand("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)").ExecuteNonQueryAsync();
        foreach (var n in new[] { 1, 2 })
        {
            await using var insert = db.CreateCommand("INSERT INTO notes (body) VALUES ($1)");
            insert.Parameters.Add(new NpgsqlParameter { Value = $"{author}: {n}" });
            await insert.ExecuteNonQueryAsync();
        }

        var notes = new List<string>();
        await using var reader = await db.CreateCommand("SELECT body FROM notes ORDER BY id").ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            notes.Add(reader.GetString(0));
        }

        return [.. notes];
    }
}
