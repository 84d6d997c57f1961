using System.Collections.Concurrent;
using System.Globalization;
using IsoTest.Modules;

namespace IsoTest.Modules.PostgreSql;

/// <summary>
/// A data directory made once by <c>initdb</c> (in a container, as the PostgreSQL user) per process, root and credentials:
/// servers start on copy-on-write views of it, so none pays for initdb and none sees another's writes. Removed when the
/// process exits.
/// </summary>
internal sealed class PostgreSqlTemplate
{
    private static readonly ConcurrentDictionary<string, Lazy<Task<PostgreSqlTemplate>>> s_templates = new(StringComparer.Ordinal);
    private static readonly ConcurrentBag<string> s_directories = [];

    /// <summary>Template directories are named after the process that made them, so a later process can sweep a killed one's.</summary>
    private static readonly string s_prefix = "isotest-postgresql-template-";

    static PostgreSqlTemplate() => AppDomain.CurrentDomain.ProcessExit += (_, _) => DeleteAll();

    /// <summary>Removes this process's templates (at exit; tests call it when done).</summary>
    internal static void DeleteAll()
    {
        foreach (var directory in s_directories)
        {
            TryDelete(directory);
        }

        s_templates.Clear();
    }

    /// <summary>Removes the templates of processes that are gone (killed before their exit handler ran).</summary>
    internal static void SweepOrphans()
    {
        foreach (var directory in Directory.EnumerateDirectories(Path.GetTempPath(), s_prefix + "*"))
        {
            var name = Path.GetFileName(directory)[s_prefix.Length..];
            var dash = name.IndexOf('-', StringComparison.Ordinal);
            if (dash > 0 && int.TryParse(name[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            {
                TryDelete(directory);
            }
        }
    }

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory another sweep may be removing too; the next sweep tries again.
        }
        catch (UnauthorizedAccessException)
        {
            // Another user's template (rootless and root share /tmp): not ours to remove.
        }
    }

    private PostgreSqlTemplate(string osUser, string binDirectory, string dataDirectory)
    {
        OsUser = osUser;
        BinDirectory = binDirectory;
        DataDirectory = dataDirectory;
    }

    /// <summary>The user initdb and postgres run as: both refuse to run as root.</summary>
    public string OsUser { get; }

    /// <summary>Where <c>postgres</c> and <c>initdb</c> are (a host path, or the same path inside the directory root).</summary>
    public string BinDirectory { get; }

    /// <summary>The initialised data directory on the host (owned by <see cref="OsUser"/>, mode 0700); never written after initdb.</summary>
    public string DataDirectory { get; }

    public static async Task<PostgreSqlTemplate> GetAsync(ModuleRoot root, IContainerBackend backend, string username, string password, string database, CancellationToken cancellationToken)
    {
        var key = string.Join('\0', root.Kind, root.Value, username, password, database);
        var lazy = s_templates.GetOrAdd(key, _ => new Lazy<Task<PostgreSqlTemplate>>(() => CreateAsync(root, backend, username, password, database)));
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (lazy.Value.IsFaulted)
        {
            s_templates.TryRemove(new KeyValuePair<string, Lazy<Task<PostgreSqlTemplate>>>(key, lazy)); // the next start tries again
            throw;
        }
    }

    private static async Task<PostgreSqlTemplate> CreateAsync(ModuleRoot root, IContainerBackend backend, string username, string password, string database)
    {
        var rootPath = root.Kind == ModuleRootKind.Directory ? root.Value! : "/";
        var bin = FindBinDirectory(rootPath);
        var osUser = File.Exists(Path.Combine(rootPath, "etc/passwd"))
            && File.ReadLines(Path.Combine(rootPath, "etc/passwd")).Any(line => line.StartsWith("postgres:", StringComparison.Ordinal))
            ? "postgres"
            : "nobody";

        SweepOrphans();
        var work = Directory.CreateTempSubdirectory($"{s_prefix}{Environment.ProcessId}-");
        s_directories.Add(work.FullName);
        // initdb creates data/ in here as osUser; as root osUser does not own this directory, so it may write as in /tmp.
        work.UnixFileMode = (UnixFileMode)Convert.ToInt32("1777", 8);
        await File.WriteAllTextAsync(Path.Combine(work.FullName, "pw"), password).ConfigureAwait(false);
        File.SetUnixFileMode(Path.Combine(work.FullName, "pw"), (UnixFileMode)Convert.ToInt32("644", 8));

        var script = string.Join('\n',
            "set -e",
            $"'{bin}/initdb' -D /template/data --username='{username}' --pwfile=/template/pw --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C --no-sync >/dev/null",
            // Any client address: Docker's port publishing connects from its bridge, not from loopback.
            "echo 'host all all all scram-sha-256' >> /template/data/pg_hba.conf",
            database == "postgres" ? "true" : $"echo 'CREATE DATABASE \"{database}\"' | '{bin}/postgres' --single -D /template/data -c fsync=off postgres >/dev/null");
        var builder = root.Kind == ModuleRootKind.Directory ? new ContainerBuilder().FromDirectory(rootPath) : new ContainerBuilder().FromHost();
        var initdb = await builder
            .WithBackend(backend)
            .WithUser(osUser)
            .WithBindMount(work.FullName, "/template")
            .WithCommand("/bin/sh", "-c", script)
            .StartAsync().ConfigureAwait(false);
        await using (initdb.ConfigureAwait(false))
        {
            var exitCode = await initdb.WaitForExitAsync().ConfigureAwait(false);
            File.Delete(Path.Combine(work.FullName, "pw"));
            if (exitCode != 0)
            {
                throw new InvalidOperationException(
                    $"PostgreSQL's initdb for the template (user {username}, database {database}) failed with exit code {exitCode}:\n{string.Join('\n', initdb.GetLogs())}");
            }
        }

        work.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        return new PostgreSqlTemplate(osUser, bin, Path.Combine(work.FullName, "data"));
    }

    /// <summary>PATH first (a source build, the machine image), then Debian's /usr/lib/postgresql/VERSION/bin, newest first; under <paramref name="root"/>.</summary>
    private static string FindBinDirectory(string root)
    {
        var debian = Directory.Exists(Path.Combine(root, "usr/lib/postgresql"))
            ? Directory.GetDirectories(Path.Combine(root, "usr/lib/postgresql"))
                .OrderByDescending(v => double.TryParse(Path.GetFileName(v), CultureInfo.InvariantCulture, out var n) ? n : 0)
                .Select(v => "/" + Path.GetRelativePath(root, Path.Combine(v, "bin")))
            : [];
        var candidates = root == "/"
            ? HostPrograms.FindDirectory(debian, "postgres", "initdb")
            : debian.FirstOrDefault(d => File.Exists(Path.Combine(root, d.TrimStart('/'), "postgres")));
        return candidates ?? throw new InvalidOperationException(
            $"PostgreSQL's server programs (postgres and initdb) are neither on PATH nor in {Path.Combine(root, "usr/lib/postgresql")}/VERSION/bin: " +
            "install them (apt-get install postgresql), or use an image (WithImage).");
    }
}
