using IsoTest.Modules.PostgreSql;
using Npgsql;

namespace IsoTest.Modules.Tests;

/// <summary>
/// App → PostgreSQL by alias, the same definitions on both backends: a server on a user-defined network as <c>db</c>,
/// and an app container on that network that queries it with <c>psql -h db</c> (no port published for it). The host's
/// PostgreSQL on the engine (root and rootless), the same programs in a directory root on Docker.
/// </summary>
[Collection(DirectoryImageTests.Name)]
public sealed class PostgreSqlNetworkTests(Backends backends) : IClassFixture<Backends>, IDisposable
{
    private static readonly string Version = Directory.GetDirectories("/usr/lib/postgresql").Select(Path.GetFileName).OrderDescending().First()!;
    private static readonly string Psql = $"/usr/lib/postgresql/{Version}/bin/psql";
    private readonly string _rootfs = Directory.CreateTempSubdirectory("isotest-modules-postgres-nw-").FullName;

    public void Dispose() => Directory.Delete(_rootfs, recursive: true);

    [Fact]
    public async Task Engine_AppOnTheNetwork_QueriesPostgresByAlias() =>
        await AppQueriesByAliasAsync(backends.Engine, postgres => postgres.FromHost(), app => app.FromHost());

    [Fact]
    public async Task Docker_AppOnTheNetwork_QueriesPostgresByAlias()
    {
        await using var images = await DirectoryImages.SnapshotAsync();
        await HostProgramsRootFs.BuildAsync(
            _rootfs,
            [$"/usr/lib/postgresql/{Version}/bin/postgres", $"/usr/lib/postgresql/{Version}/bin/initdb", Psql],
            [$"/usr/share/postgresql/{Version}", $"/usr/lib/postgresql/{Version}/lib"]);
        await AppQueriesByAliasAsync(backends.Docker, postgres => postgres.FromDirectory(_rootfs), app => app.FromDirectory(_rootfs));
    }

    [Fact]
    public async Task Engine_AppOnAnotherNetwork_CannotReachPostgres()
    {
        await using var network = await new NetworkBuilder().WithName("nw-pg-" + Guid.NewGuid().ToString("N")[..8]).WithBackend(backends.Engine).BuildAsync();
        await using var other = await new NetworkBuilder().WithBackend(backends.Engine).BuildAsync();
        await using var postgres = await Server(backends.Engine, network).FromHost().StartAsync();
        await using var app = await App(backends.Engine, other).FromHost().StartAsync();

        var result = await app.ExecAsync(["/bin/busybox", "sh", "-c", $"PGCONNECT_TIMEOUT=2 {Psql} -h db -U tester -d app -tAc 'SELECT 1' 2>&1; echo exit=$?"]);

        Assert.Contains("exit=2", result.Stdout, StringComparison.Ordinal); // psql: the connection failed
        Assert.Contains("could not translate host name \"db\"", result.Stdout, StringComparison.Ordinal);
    }

    private static PostgreSqlBuilder Server(IContainerBackend backend, INetwork network) =>
        new PostgreSqlBuilder().WithDatabase("app").WithUsername("tester").WithPassword("s3cret").WithBackend(backend)
            .WithContainer(c => c.WithNetwork(network).WithNetworkAliases("db"));

    /// <summary>The app: a shell that waits to be told what to run; psql finds its password in the environment.</summary>
    private static ContainerBuilder App(IContainerBackend backend, INetwork network) =>
        new ContainerBuilder().WithBackend(backend).WithNetwork(network).WithNetworkAliases("app")
            .WithEnvironment("PGPASSWORD", "s3cret")
            .WithCommand("/bin/busybox", "sleep", "600");

    private static async Task AppQueriesByAliasAsync(IContainerBackend backend, Func<PostgreSqlBuilder, PostgreSqlBuilder> postgresRoot, Func<ContainerBuilder, ContainerBuilder> appRoot)
    {
        await using var network = await new NetworkBuilder().WithName("nw-pg-" + Guid.NewGuid().ToString("N")[..8]).WithBackend(backend).BuildAsync();
        await using var postgres = await postgresRoot(Server(backend, network)).StartAsync();
        await using var app = await appRoot(App(backend, network)).StartAsync();

        // Written from the test through the published port, read by the app through the network: one database.
        await using (var connection = new NpgsqlConnection(postgres.GetConnectionString()))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE orders (id int, item text); INSERT INTO orders VALUES (1, 'tea'), (2, 'coffee')", connection);
            await create.ExecuteNonQueryAsync();
        }

        var result = await app.ExecAsync([Psql, "-h", "db", "-p", $"{PostgreSqlBuilder.Port}", "-U", "tester", "-d", "app", "-tAc",
            "SELECT string_agg(item, ',' ORDER BY id) || ' ' || inet_server_addr()::text FROM orders"]);

        Assert.True(result.ExitCode == 0, $"psql -h db failed ({result.ExitCode}): {result.Stdout}{result.Stderr}");
        var (items, serverAddress) = (result.Stdout.Trim().Split(' ')[0], result.Stdout.Trim().Split(' ')[1]);
        Assert.Equal("tea,coffee", items);
        // The app came over the network, not through a relay on loopback.
        Assert.False(System.Net.IPAddress.IsLoopback(System.Net.IPAddress.Parse(serverAddress.Split('/')[0])), $"the server saw the app on {serverAddress}");
    }
}
