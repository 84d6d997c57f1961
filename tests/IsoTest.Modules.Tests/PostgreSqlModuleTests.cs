using IsoTest.Modules.PostgreSql;
using Npgsql;

namespace IsoTest.Modules.Tests;

/// <summary>The PostgreSQL module against real servers: the host's PostgreSQL on the engine, the same programs in a directory root on Docker.</summary>
[Collection(DirectoryImageTests.Name)]
public sealed class PostgreSqlModuleTests(Backends backends) : IClassFixture<Backends>, IDisposable
{
    private readonly string _rootfs = Directory.CreateTempSubdirectory("isotest-modules-postgres-").FullName;

    public void Dispose() => Directory.Delete(_rootfs, recursive: true);

    private PostgreSqlBuilder App() => new PostgreSqlBuilder().WithDatabase("app").WithUsername("tester").WithPassword("s3cret");

    [Fact]
    public async Task Engine_CreatesTheDatabaseWithTheCredentials()
    {
        await using var postgres = await App().WithBackend(backends.Engine).StartAsync();

        Assert.Equal(("app", "tester", "s3cret"), (postgres.Database, postgres.Username, postgres.Password));
        await using var connection = new NpgsqlConnection(postgres.GetConnectionString());
        await connection.OpenAsync();
        await using var who = new NpgsqlCommand("SELECT current_database() || ' ' || current_user", connection);
        Assert.Equal("app tester", await who.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Engine_WrongPassword_IsRefused()
    {
        await using var postgres = await App().WithBackend(backends.Engine).StartAsync();

        var wrong = postgres.GetConnectionString().Replace("Password=s3cret", "Password=nope", StringComparison.Ordinal);
        await using var connection = new NpgsqlConnection(wrong);
        var e = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());
        Assert.Equal("28P01", e.SqlState); // invalid_password
    }

    [Fact]
    public async Task Engine_EachServer_StartsFromTheTemplate_WritesStayInIt()
    {
        // Copy-on-write: the first server's table never reaches the template the second one starts from.
        await using (var first = await App().WithBackend(backends.Engine).StartAsync())
        {
            await ExecuteAsync(first.GetConnectionString(), "CREATE TABLE only_here (id int)");
        }

        await using var second = await App().WithBackend(backends.Engine).StartAsync();
        Assert.Equal(0L, await ExecuteAsync(second.GetConnectionString(), "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'"));
    }

    [Fact]
    public async Task Docker_DirectoryRoot_CreatesTheDatabaseWithTheCredentials()
    {
        await using var images = await DirectoryImages.SnapshotAsync();
        var version = Directory.GetDirectories("/usr/lib/postgresql").Select(Path.GetFileName).OrderDescending().First()!;
        await HostProgramsRootFs.BuildAsync(
            _rootfs,
            [$"/usr/lib/postgresql/{version}/bin/postgres", $"/usr/lib/postgresql/{version}/bin/initdb"],
            [$"/usr/share/postgresql/{version}", $"/usr/lib/postgresql/{version}/lib"]);
        await using var postgres = await App().FromDirectory(_rootfs).WithBackend(backends.Docker).StartAsync();

        Assert.Equal("app tester", await ExecuteAsync(postgres.GetConnectionString(), "SELECT current_database() || ' ' || current_user"));
    }

    [Fact]
    public void Docker_DefaultRoot_IsThePostgresImage_WithItsEnvironment()
    {
        // Nothing is started: there is no registry here to pull postgres:16 from; the spec is what Docker is asked for.
        var declared = App().WithBackend(backends.Docker).Configure(new ContainerBuilder()).Build();
        Assert.Equal(RootFileSystem.FromImage(PostgreSqlBuilder.DefaultImage), declared.RootFileSystem);
        Assert.Equal("app", declared.Environment["POSTGRES_DB"]);
        Assert.Equal("tester", declared.Environment["POSTGRES_USER"]);
        Assert.Equal("s3cret", declared.Environment["POSTGRES_PASSWORD"]);
    }

    [Fact]
    public async Task Template_OfAKilledProcess_IsSweptByTheNextOne()
    {
        // A process that is gone: its pid cannot be anyone's while we look (we waited for it).
        using var gone = System.Diagnostics.Process.Start("true")!;
        await gone.WaitForExitAsync();
        var orphan = Path.Combine(Path.GetTempPath(), $"isotest-postgresql-template-{gone.Id}-test");
        Directory.CreateDirectory(Path.Combine(orphan, "data"));
        var mine = Path.Combine(Path.GetTempPath(), $"isotest-postgresql-template-{Environment.ProcessId}-test");
        Directory.CreateDirectory(mine);
        try
        {
            PostgreSqlTemplate.SweepOrphans();

            Assert.False(Directory.Exists(orphan));
            Assert.True(Directory.Exists(mine)); // a live process's template stays
        }
        finally
        {
            Directory.Delete(mine, recursive: true);
            if (Directory.Exists(orphan))
            {
                Directory.Delete(orphan, recursive: true);
            }
        }
    }

    [Fact]
    public void WithDatabase_NotAnIdentifier_NamesTheRule()
    {
        var e = Assert.Throws<ArgumentException>(() => new PostgreSqlBuilder().WithDatabase("app; DROP"));
        Assert.Contains("not a plain PostgreSQL identifier", e.Message, StringComparison.Ordinal);
    }

    private static async Task<object?> ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
