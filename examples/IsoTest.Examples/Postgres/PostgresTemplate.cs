using System.Globalization;

namespace IsoTest.Examples.Postgres;

/// <summary>
/// A PostgreSQL data directory made once per test run by <c>initdb</c> (run in a container, as the PostgreSQL user):
/// every test's server starts from a copy-on-write view of it, so no test pays for initdb and none sees another's writes.
/// An xunit collection fixture: created before the first test of <see cref="PostgresCollection"/>, deleted after the last.
/// </summary>
public sealed class PostgresTemplate : IAsyncLifetime
{
    private static string? s_directory;
    private DirectoryInfo? _workDirectory;

    /// <summary>The user initdb and postgres run as: both refuse to run as root.</summary>
    /// <remarks>Rootless, IsoTest maps the caller to this user, so the caller's files are this user's in the container.</remarks>
    public static string User { get; } =
        File.ReadLines("/etc/passwd").Any(line => line.StartsWith("postgres:", StringComparison.Ordinal)) ? "postgres" : "nobody";

    /// <summary>The directory that holds <c>postgres</c> and <c>initdb</c>.</summary>
    public static string BinDirectory { get; } = FindBinDirectory();

    /// <summary>
    /// The host directory whose <c>data/</c> subdirectory is the initialised data directory (owned by <see cref="User"/>,
    /// mode 0700, as PostgreSQL demands). Never written after initdb: each server writes to its own copy-on-write view.
    /// </summary>
    public static string Directory => s_directory ?? throw new InvalidOperationException(
        $"The PostgreSQL template does not exist yet: put the test class in [Collection(nameof({nameof(PostgresCollection)}))], whose fixture runs initdb once.");

    public async Task InitializeAsync()
    {
        _workDirectory = System.IO.Directory.CreateTempSubdirectory("isotest-postgres-template-");
        // initdb creates data/ in here as User; as root, User is not the owner of this directory, so it may write like in /tmp.
        _workDirectory.UnixFileMode = (UnixFileMode)Convert.ToInt32("1777", 8);

        await using var initdb = await new ContainerBuilder()
            .FromHost()
            .WithUser(User)
            .WithBindMount(_workDirectory.FullName, "/template")
            .WithCommand(Path.Combine(BinDirectory, "initdb"), "-D", "/template/data",
                "--username=postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync",
                // 1 MiB WAL segments, not 16: a server's first write opens the current segment, and its copy-on-write
                // view copies that file whole into the server's own layer (a 16 MiB copy on every test's path).
                "--wal-segsize=1")
            .WithMemoryLimit("256m")
            .StartAsync();
        var exitCode = await initdb.WaitForExitAsync();
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"initdb failed with exit code {exitCode}:\n{string.Join('\n', initdb.GetLogs())}");
        }

        _workDirectory.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        s_directory = _workDirectory.FullName;
    }

    public Task DisposeAsync()
    {
        s_directory = null;
        _workDirectory?.Delete(recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>PATH first (where a source build or the machine image put them), then Debian's /usr/lib/postgresql/&lt;version&gt;/bin, newest first.</summary>
    private static string FindBinDirectory()
    {
        static bool HasServer(string directory) =>
            File.Exists(Path.Combine(directory, "postgres")) && File.Exists(Path.Combine(directory, "initdb"));

        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault(HasServer);
        if (onPath is not null)
        {
            return onPath;
        }

        var debian = System.IO.Directory.Exists("/usr/lib/postgresql")
            ? System.IO.Directory.GetDirectories("/usr/lib/postgresql")
                .Select(version => Path.Combine(version, "bin"))
                .Where(HasServer)
                .OrderByDescending(bin => double.TryParse(Path.GetFileName(Path.GetDirectoryName(bin)), CultureInfo.InvariantCulture, out var v) ? v : 0)
                .FirstOrDefault()
            : null;
        return debian ?? throw new InvalidOperationException(
            "PostgreSQL server binaries (postgres and initdb) are neither on PATH nor in /usr/lib/postgresql/<version>/bin: " +
            "install them (apt-get install postgresql) or add their directory to PATH.");
    }
}

/// <summary>The tests that use <see cref="Postgres"/>; its fixture makes the template they start from.</summary>
[CollectionDefinition(nameof(PostgresCollection))]
public sealed class PostgresCollection : ICollectionFixture<PostgresTemplate>;
