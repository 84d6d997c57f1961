using Npgsql;

namespace IsoTest.Examples.Images;

/// <summary>A fresh PostgreSQL from the image per test, on whichever backend ISOTEST_BACKEND picks.</summary>
[Collection(nameof(LocalImagesCollection))]
public class PostgresImageTests
{
    [Fact, ContainerFixture(typeof(PostgresImage))]
    public async Task Stores_and_reads_rows(IContainer postgres)
    {
        await using var db = NpgsqlDataSource.Create(PostgresImage.ConnectionString(postgres));
        await db.CreateCommand("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)").ExecuteNonQueryAsync();
        await db.CreateCommand("INSERT INTO orders (item) VALUES ('tea'), ('cake')").ExecuteNonQueryAsync();

        Assert.Equal(2L, await db.CreateCommand("SELECT count(*) FROM orders").ExecuteScalarAsync());
    }

    [Fact, ContainerFixture(typeof(PostgresImage))]
    public async Task Runs_as_the_images_user_from_Debians_packages(IContainer postgres)
    {
        await using var db = NpgsqlDataSource.Create(PostgresImage.ConnectionString(postgres));
        var version = (string?)await db.CreateCommand("SELECT version()").ExecuteScalarAsync();
        var user = await postgres.ExecAsync(["id", "-un"]);
        var debian = await postgres.ExecAsync(["cat", "/etc/debian_version"]);

        Assert.StartsWith("PostgreSQL 15.", version);
        Assert.Equal("postgres", user.Stdout.Trim());
        Assert.StartsWith("12.", debian.Stdout.Trim());
    }
}
