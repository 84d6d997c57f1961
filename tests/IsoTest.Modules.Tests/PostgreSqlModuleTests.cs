using System.Diagnostics;
using IsoTest.Modules.PostgreSql;
using IsoTest.TestSupport;
using Npgsql;
using Xunit.Abstractions;

namespace IsoTest.Modules.Tests;

/// <summary>
/// The PostgreSQL module against real servers. By default it runs its image on both backends (here the Debian image
/// that ISOTEST_POSTGRES_IMAGE names): on the engine from a copy-on-write template made by one initdb, on Docker through
/// the image's entrypoint. FromHost() runs the host's PostgreSQL on the engine from a template too; Docker runs the same
/// programs from a directory root.
/// </summary>
[Collection(DirectoryImageTests.Name)]
public sealed class PostgreSqlModuleTests(Backends backends, ITestOutputHelper output) : IClassFixture<Backends>, IDisposable
{
    private readonly string _rootfs = Directory.CreateTempSubdirectory("isotest-modules-postgres-").FullName;

    public void Dispose() => Directory.Delete(_rootfs, recursive: true);

    private static PostgreSqlBuilder App() => new PostgreSqlBuilder().WithDatabase("app").WithUsername("tester").WithPassword("s3cret");

    /// <summary>The module's two roots on the engine: its image (the default) and the host's programs.</summary>
    public static TheoryData<string> EngineRoots => ["image", "host"];

    private static PostgreSqlBuilder On(string root, PostgreSqlBuilder postgres) => root == "host" ? postgres.FromHost() : postgres;

    [Theory, MemberData(nameof(EngineRoots))]
    public async Task Engine_CreatesTheDatabaseWithTheCredentials(string root)
    {
        await using var postgres = await On(root, App()).WithBackend(backends.Engine).StartAsync();

        Assert.Equal(root == "host" ? RootFileSystem.Host : RootFileSystem.FromImage(DebianImages.Postgres), postgres.Container.Spec.RootFileSystem);
        Assert.Equal(("app", "tester", "s3cret"), (postgres.Database, postgres.Username, postgres.Password));
        Assert.Equal("app tester", await ExecuteAsync(postgres.GetConnectionString(), "SELECT current_database() || ' ' || current_user"));
        // From the template, not the image's entrypoint: the data directory is a copy-on-write view, postgres runs as its user.
        Assert.Contains(postgres.Container.Spec.Mounts, m => m.Kind == MountKind.CopyOnWrite && m.Target == "/var/lib/postgresql/data");
        var who = await postgres.Container.ExecAsync(["sh", "-c", "id -un; stat -c '%U %a' /var/lib/postgresql/data"]);
        Assert.Equal("postgres\npostgres 700\n", who.Stdout);
    }

    [Theory, MemberData(nameof(EngineRoots))]
    public async Task Engine_WrongPassword_IsRefused(string root)
    {
        await using var postgres = await On(root, App()).WithBackend(backends.Engine).StartAsync();

        var wrong = postgres.GetConnectionString().Replace("Password=s3cret", "Password=nope", StringComparison.Ordinal);
        await using var connection = new NpgsqlConnection(wrong);
        var e = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());
        Assert.Equal("28P01", e.SqlState); // invalid_password
    }

    [Theory, MemberData(nameof(EngineRoots))]
    public async Task Engine_EachServer_StartsFromTheTemplate_WritesStayInIt(string root)
    {
        // Copy-on-write: the first server's table never reaches the template the second one starts from.
        await using (var first = await On(root, App()).WithBackend(backends.Engine).StartAsync())
        {
            await ExecuteAsync(first.GetConnectionString(), "CREATE TABLE only_here (id int)");
        }

        await using var second = await On(root, App()).WithBackend(backends.Engine).StartAsync();
        Assert.Equal(0L, await ExecuteAsync(second.GetConnectionString(), "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'"));
    }

    [Theory, MemberData(nameof(EngineRoots))]
    public async Task Engine_Template_HasOneMiBWalSegments_ServerWritesPastMany(string root)
    {
        // The template's small segments (less to copy into each server's layer) must still take a test's writes:
        // ~4 MiB of rows cross several segments, each a new file in the server's own layer.
        await using var postgres = await On(root, App()).WithBackend(backends.Engine).StartAsync();
        var connection = postgres.GetConnectionString();

        Assert.Equal("1MB", await ExecuteAsync(connection, "SHOW wal_segment_size"));
        var before = (string)(await ExecuteAsync(connection, "SELECT pg_walfile_name(pg_current_wal_lsn())"))!;
        await ExecuteAsync(connection, "CREATE TABLE bulk AS SELECT n, repeat('x', 1000) AS body FROM generate_series(1, 4000) AS n");
        var after = (string)(await ExecuteAsync(connection, "SELECT pg_walfile_name(pg_current_wal_lsn())"))!;

        Assert.Equal(4000L, await ExecuteAsync(connection, "SELECT count(*) FROM bulk"));
        Assert.True(Convert.ToInt64(after[^8..], 16) - Convert.ToInt64(before[^8..], 16) >= 3, $"WAL went from {before} to {after}: fewer than 3 segments for ~4 MiB of rows");
    }

    [Fact]
    public async Task Engine_ServerStart_FromTheImageTemplateAndTheHostTemplate_PrintsTheTimes()
    {
        // Not an assertion on speed (the figures go to the output): each start is a server that answers, and both roots
        // start from their template (made before the clock runs).
        const int Starts = 7;
        var times = new Dictionary<string, List<double>>();
        foreach (var root in new[] { "image", "host" })
        {
            await (await On(root, App()).WithBackend(backends.Engine).StartAsync()).DisposeAsync(); // makes the template
            times[root] = [];
            for (var i = 0; i < Starts; i++)
            {
                var clock = Stopwatch.StartNew();
                await using var postgres = await On(root, App()).WithBackend(backends.Engine).StartAsync();
                times[root].Add(clock.Elapsed.TotalMilliseconds);
                Assert.Equal(1, await ExecuteAsync(postgres.GetConnectionString(), "SELECT 1"));
            }
        }

        foreach (var (root, ms) in times)
        {
            var sorted = ms.Order().ToArray();
            output.WriteLine($"PostgreSQL start to ready on the engine from the {root} template: median {sorted[Starts / 2]:F0} ms, min {sorted[0]:F0} ms, max {sorted[^1]:F0} ms ({Starts} starts)");
        }
    }

    [Fact]
    public async Task Docker_Image_CreatesTheDatabaseWithTheCredentials()
    {
        // Docker has no copy-on-write mounts: the image's entrypoint runs initdb from POSTGRES_* in every container.
        await using var postgres = await App().WithBackend(backends.Docker).StartAsync();

        Assert.Equal(RootFileSystem.FromImage(DebianImages.Postgres), postgres.Container.Spec.RootFileSystem);
        Assert.Equal("tester", postgres.Container.Spec.Environment["POSTGRES_USER"]);
        Assert.Equal("app tester", await ExecuteAsync(postgres.GetConnectionString(), "SELECT current_database() || ' ' || current_user"));
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
    public async Task Engine_MissingImage_NamesTheImageTheVariableAndFromHost()
    {
        // What a machine without a registry meets (port 1: nothing listens, as no registry answers offline).
        var e = await Assert.ThrowsAsync<ImagePullException>(() => App().WithImage("localhost:1/postgres:16").WithBackend(backends.Engine).StartAsync());

        ModuleImageTests.AssertNamesTheFixes(e.Message, "localhost:1/postgres:16", PostgreSqlBuilder.ImageVariable);
    }

    [Fact]
    public async Task Template_OwnedByThePostgresUser_IsRemovedByItsMaker()
    {
        // initdb's files are the image's postgres user's: a uid of its own as root, a subordinate one rootless with
        // ranges; never this process's own user as root. Whoever they belong to, the template goes with its maker.
        var root = new ModuleRoot(ModuleRootKind.Image, DebianImages.Postgres);
        var template = await PostgreSqlTemplate.GetAsync(root, backends.Engine, "owner_test", "pw", "owned", CancellationToken.None);
        Assert.True(File.Exists(Path.Combine(template.DataDirectory, "PG_VERSION")), $"{template.DataDirectory} has no PG_VERSION");
        var owner = await OwnerAsync(Path.Combine(template.DataDirectory, "global"));
        output.WriteLine($"the template's files belong to uid {owner}; this process runs as {Environment.UserName}");
        if (Environment.UserName == "root")
        {
            Assert.NotEqual("0", owner);
        }

        template.Delete();

        Assert.False(Directory.Exists(Path.GetDirectoryName(template.DataDirectory)), $"{template.DataDirectory} (files of uid {owner}) was left behind");
    }

    [Fact]
    public async Task Template_OfAKilledProcess_GoesWithIt()
    {
        // The reaper waits for the end of a pipe only this process writes: closing it here is what the kernel does
        // when this process is killed (a test host often is, so ProcessExit never runs).
        var directory = Directory.CreateTempSubdirectory("isotest-modules-reaped-").FullName;
        Directory.CreateDirectory(Path.Combine(directory, "data", "base"));
        await File.WriteAllTextAsync(Path.Combine(directory, "data", "base", "1"), "x");
        using var reaper = PostgreSqlTemplate.StartReaper(directory)!;
        Assert.True(Directory.Exists(directory)); // nothing goes while this process lives

        reaper.StandardInput.Close();
        await reaper.WaitForExitAsync();

        Assert.False(Directory.Exists(directory), $"{directory} outlived the process that made it");
    }

    [Fact]
    public async Task Template_OfAKilledProcess_IsSweptByTheNextOne()
    {
        // A process that is gone: its pid cannot be anyone's while we look (we waited for it).
        using var gone = Process.Start("true")!;
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

    private static async Task<string> OwnerAsync(string path)
    {
        using var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true })!;
        var uid = (await stat.StandardOutput.ReadToEndAsync()).Trim();
        await stat.WaitForExitAsync();
        return uid;
    }

    /// <summary>
    /// Through a data source of its own, whose pool goes with it: servers come and go here, and a later one may get an
    /// earlier one's host port, so a process-wide pool would hand out a connection to a server that is gone (reset).
    /// </summary>
    private static async Task<object?> ExecuteAsync(string connectionString, string sql)
    {
        await using var db = NpgsqlDataSource.Create(connectionString);
        return await db.CreateCommand(sql).ExecuteScalarAsync();
    }
}
