using IsoTest.Modules.PostgreSql;
using IsoTest.TestSupport;
using Npgsql;

namespace IsoTest.Modules.Tests;

/// <summary>
/// App → PostgreSQL by alias, the same definitions on both backends: a server on a user-defined network as <c>db</c>,
/// and an app container on that network that queries it with <c>psql -h db</c> (no port published for it). From the
/// Debian PostgreSQL image on both backends (the app too: it has psql), and from the host's programs on the engine
/// (root and rootless).
/// </summary>
public sealed class PostgreSqlNetworkTests(Backends backends) : IClassFixture<Backends>
{
    private static readonly string Version = Directory.GetDirectories("/usr/lib/postgresql").Select(Path.GetFileName).OrderDescending().First()!;
    private static readonly string Psql = $"/usr/lib/postgresql/{Version}/bin/psql";

    [Fact]
    public async Task Engine_Image_AppOnTheNetwork_QueriesPostgresByAlias() =>
        await AppQueriesByAliasAsync(backends.Engine, postgres => postgres, ImageApp, "psql");

    [Fact]
    public async Task Engine_Host_AppOnTheNetwork_QueriesPostgresByAlias() =>
        await AppQueriesByAliasAsync(backends.Engine, postgres => postgres.FromHost(), app => app.FromHost().WithCommand("/bin/busybox", "sleep", "600"), Psql);

    [Fact]
    public async Task Docker_Image_AppOnTheNetwork_QueriesPostgresByAlias() =>
        await AppQueriesByAliasAsync(backends.Docker, postgres => postgres, ImageApp, "psql");

    /// <summary>The Debian PostgreSQL image as the app: its psql on PATH, a sleep instead of the server.</summary>
    private static ContainerBuilder ImageApp(ContainerBuilder app) => app.FromImage(DebianImages.Postgres).WithEntrypoint("sleep", "600");

    [Fact]
    public async Task Engine_AppOnAnotherNetwork_CannotReachPostgres()
    {
        await using var network = await new NetworkBuilder().WithName("nw-pg-" + Guid.NewGuid().ToString("N")[..8]).WithBackend(backends.Engine).BuildAsync();
        await using var other = await new NetworkBuilder().WithBackend(backends.Engine).BuildAsync();
        await using var postgres = await Server(backends.Engine, network).FromHost().StartAsync();
        await using var app = await App(backends.Engine, other).FromHost().WithCommand("/bin/busybox", "sleep", "600").StartAsync();

        var result = await app.ExecAsync(["/bin/busybox", "sh", "-c", $"PGCONNECT_TIMEOUT=2 {Psql} -h db -U tester -d app -tAc 'SELECT 1' 2>&1; echo exit=$?"]);

        Assert.Contains("exit=2", result.Stdout, StringComparison.Ordinal); // psql: the connection failed
        Assert.Contains("could not translate host name \"db\"", result.Stdout, StringComparison.Ordinal);
    }

    private static PostgreSqlBuilder Server(IContainerBackend backend, INetwork network) =>
        new PostgreSqlBuilder().WithDatabase("app").WithUsername("tester").WithPassword("s3cret").WithBackend(backend)
            .WithContainer(c => c.WithNetwork(network).WithNetworkAliases("db"));

    /// <summary>The app: a container that waits to be told what to run (its root adds the sleep); psql finds its password in the environment.</summary>
    private static ContainerBuilder App(IContainerBackend backend, INetwork network) =>
        new ContainerBuilder().WithBackend(backend).WithNetwork(network).WithNetworkAliases("app")
            .WithEnvironment("PGPASSWORD", "s3cret");

    private static async Task AppQueriesByAliasAsync(
        IContainerBackend backend, Func<PostgreSqlBuilder, PostgreSqlBuilder> postgresRoot, Func<ContainerBuilder, ContainerBuilder> appRoot, string psql)
    {
        await using var network = await new NetworkBuilder().WithName("nw-pg-" + Guid.NewGuid().ToString("N")[..8]).WithBackend(backend).BuildAsync();
        await using var postgres = await postgresRoot(Server(backend, network)).StartAsync();
        await using var app = await appRoot(App(backend, network)).StartAsync();

        // Written from the test through the published port, read by the app through the network: one database.
        // A data source of its own: its pool goes with it (a process-wide one may hold a connection to an earlier server
        // that had this host port).
        await using (var db = NpgsqlDataSource.Create(postgres.GetConnectionString()))
        {
            await db.CreateCommand("CREATE TABLE orders (id int, item text); INSERT INTO orders VALUES (1, 'tea'), (2, 'coffee')").ExecuteNonQueryAsync();
        }

        var result = await app.ExecAsync([psql, "-h", "db", "-p", $"{PostgreSqlBuilder.Port}", "-U", "tester", "-d", "app", "-tAc",
            "SELECT string_agg(item, ',' ORDER BY id) || ' ' || inet_server_addr()::text FROM orders"]);

        Assert.True(result.ExitCode == 0, $"psql -h db failed ({result.ExitCode}): {result.Stdout}{result.Stderr}");
        var (items, serverAddress) = (result.Stdout.Trim().Split(' ')[0], result.Stdout.Trim().Split(' ')[1]);
        Assert.Equal("tea,coffee", items);
        // The app came over the network, not through a relay on loopback.
        Assert.False(System.Net.IPAddress.IsLoopback(System.Net.IPAddress.Parse(serverAddress.Split('/')[0])), $"the server saw the app on {serverAddress}");
    }
}
