using IsoTest.Modules.PostgreSql;
using IsoTest.TestSupport;
using Npgsql;

namespace IsoTest.Modules.Tests;

/// <summary>
/// PostgreSQL from the real Debian image (.ci/images.sh: Debian's postgresql-15 on a debootstrapped bookworm) with one
/// definition on both backends: the engine runs it from its image store, Docker from the daemon's. The image's own
/// config does the rest: USER postgres (resolved in the image's /etc/passwd), EXPOSE 5432 (published without
/// WithPort), a pg_isready HEALTHCHECK (Wait.ForHealthcheck: Docker's status, or the engine running it), STOPSIGNAL
/// SIGINT (PostgreSQL's fast shutdown), and its labels.
/// </summary>
public sealed class DebianImageTests(Backends backends) : IClassFixture<Backends>
{
    /// <summary>The same definition for both backends: nothing in it names one.</summary>
    private static ContainerBuilder Definition() => new ContainerBuilder()
        .FromImage(DebianImages.Postgres)
        .WithEnvironment("POSTGRES_PASSWORD", "s3cret")
        .WithEnvironment("POSTGRES_DB", "app")
        .WaitFor(Wait.ForHealthcheck().WithTimeout(TimeSpan.FromSeconds(120)));

    [Fact]
    public Task Engine_DebianPostgresImage_ServesNpgsql() => ServesNpgsqlAsync(backends.Engine);

    [Fact]
    public Task Docker_DebianPostgresImage_ServesNpgsql() => ServesNpgsqlAsync(backends.Docker);

    [Fact]
    public Task Engine_PostgreSqlModule_WithTheDebianImage() => ModuleAsync(backends.Engine);

    [Fact]
    public Task Docker_PostgreSqlModule_WithTheDebianImage() => ModuleAsync(backends.Docker);

    private static async Task ServesNpgsqlAsync(IContainerBackend backend)
    {
        await DebianImages.MakeAvailableAsync(backend);
        await using var container = await Definition().WithBackend(backend).StartAsync();

        // EXPOSE 5432 published; the image's labels on the container; the healthcheck the image declares.
        Assert.Contains(5432, container.Spec.Ports);
        Assert.Equal("isotest", container.Spec.Labels["org.opencontainers.image.vendor"]);
        var health = Assert.IsAssignableFrom<IContainerHealth>(container);
        Assert.Equal(["/bin/sh", "-c", "pg_isready -q -h 127.0.0.1 -p 5432"], health.Healthcheck!.Command);
        Assert.Equal(HealthStatus.Healthy, (await health.GetHealthAsync()).Status);

        var endpoint = container.GetEndpoint(5432);
        await using (var connection = new NpgsqlConnection($"Host={endpoint.Host};Port={endpoint.Port};Database=app;Username=postgres;Password=s3cret;Timeout=30"))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("CREATE TABLE t (v text); INSERT INTO t VALUES ('debian'); SELECT v || ' ' || current_user || ' ' || current_database() || ' ' || split_part(version(), ' ', 2) FROM t", connection);
            var row = (string)(await command.ExecuteScalarAsync())!;
            Assert.StartsWith("debian postgres app 15.", row, StringComparison.Ordinal);
        }

        // USER postgres from the image, resolved in its /etc/passwd: the server and an exec run as it.
        var who = await container.ExecAsync(["sh", "-c", "id -un; id -u; stat -c %U /var/lib/postgresql/data"]);
        Assert.Equal(0, who.ExitCode);
        var lines = who.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("postgres", lines[0]);
        Assert.NotEqual("0", lines[1]);
        Assert.Equal("postgres", lines[2]);

        // STOPSIGNAL SIGINT: PostgreSQL's fast shutdown, logged as such, and exit 0.
        await container.StopAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, container.ExitCode);
        Assert.Contains(container.GetLogs(), l => l.Text.Contains("received fast shutdown request", StringComparison.Ordinal));
    }

    private static async Task ModuleAsync(IContainerBackend backend)
    {
        await DebianImages.MakeAvailableAsync(backend);
        await using var postgres = await new PostgreSqlBuilder().WithImage(DebianImages.Postgres)
            .WithDatabase("shop").WithUsername("tester").WithPassword("pw").WithBackend(backend).StartAsync();
        await using var connection = new NpgsqlConnection(postgres.GetConnectionString());
        await connection.OpenAsync();
        await using var who = new NpgsqlCommand("SELECT current_database() || ' ' || current_user", connection);
        Assert.Equal("shop tester", await who.ExecuteScalarAsync());
    }
}
