using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using IsoTest.Modules;

namespace IsoTest.Modules.PostgreSql;

/// <summary>
/// A data directory made once by <c>initdb</c> (in a container, as the PostgreSQL user) per process, root (an image, the
/// host's programs, a directory) and credentials: servers start on copy-on-write views of it, so none pays for initdb and
/// none sees another's writes. Removed when the process exits.
/// </summary>
/// <remarks>
/// Its files belong to the PostgreSQL user of the container that made it, which is a host uid of its own as root and, in a
/// rootless user namespace with subordinate ids, one of the caller's subordinate uids: a user its maker is not. So initdb's
/// container opens the tree to everyone (inside this process's 0700 directory), and its maker deletes it as any user can.
/// </remarks>
internal sealed class PostgreSqlTemplate
{
    private static readonly ConcurrentDictionary<string, Lazy<Task<PostgreSqlTemplate>>> s_templates = new(StringComparer.Ordinal);
    /// <summary>This process's template directories, each with the process that removes it should this one be killed.</summary>
    private static readonly ConcurrentDictionary<string, Process?> s_directories = new(StringComparer.Ordinal);

    /// <summary>Template directories are named after the process that made them, so a later process can sweep a killed one's.</summary>
    private static readonly string s_prefix = "isotest-postgresql-template-";

    static PostgreSqlTemplate() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        try
        {
            DeleteAll();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Nobody is left to tell at exit; the next process's sweep tries again.
        }
    };

    /// <summary>Removes this process's templates (at exit; tests call it when done, and learn of one left behind).</summary>
    /// <exception cref="IOException">A template could not be removed.</exception>
    /// <exception cref="UnauthorizedAccessException">A template could not be removed.</exception>
    internal static void DeleteAll()
    {
        s_templates.Clear();
        foreach (var directory in s_directories.Keys)
        {
            DeleteDirectory(directory);
        }
    }

    /// <summary>Removes this template: later starts make a new one.</summary>
    internal void Delete()
    {
        foreach (var entry in s_templates.Where(e => e.Value.IsValueCreated && e.Value.Value.IsCompletedSuccessfully && e.Value.Value.Result == this))
        {
            s_templates.TryRemove(entry);
        }

        DeleteDirectory(Path.GetDirectoryName(DataDirectory)!);
    }

    private static void DeleteDirectory(string directory)
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }

        if (s_directories.TryRemove(directory, out var reaper) && reaper is not null)
        {
            reaper.StandardInput.Close(); // its rm finds nothing left, and it exits
            reaper.Dispose();
        }
    }

    /// <summary>
    /// A process that removes <paramref name="directory"/> once this one is gone, however it ends: a test host is often
    /// killed rather than exited, so ProcessExit never runs. It waits for the end of its stdin, a pipe only this process
    /// writes (opened close-on-exec, so no other child holds it), which the kernel closes when this process dies.
    /// </summary>
    internal static Process? StartReaper(string directory)
    {
        if (!File.Exists("/bin/sh"))
        {
            return null; // no shell to run it: ProcessExit and the next process's sweep remove the template instead
        }

        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardInput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec >/dev/null 2>&1; cat; exec rm -rf -- \"$0\"");
        start.ArgumentList.Add(directory);
        return Process.Start(start);
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

    private PostgreSqlTemplate(string osUser, string server, string dataDirectory)
    {
        OsUser = osUser;
        Server = server;
        DataDirectory = dataDirectory;
    }

    /// <summary>The template's WAL segment size in MiB (<c>initdb --wal-segsize</c>), the smallest PostgreSQL allows.</summary>
    internal const int WalSegmentMegabytes = 1;

    /// <summary>The user initdb and postgres run as: both refuse to run as root.</summary>
    public string OsUser { get; }

    /// <summary>The <c>postgres</c> program: a path (the host's, the same inside a directory root), or the name an image has on its PATH.</summary>
    public string Server { get; }

    /// <summary>The initialised data directory on the host (owned by <see cref="OsUser"/>, open to all); never written after initdb.</summary>
    public string DataDirectory { get; }

    /// <summary>The template for <paramref name="root"/> as given (<see cref="ModuleRootKind.Auto"/> stands for the module's current image), made on first use.</summary>
    public static async Task<PostgreSqlTemplate> GetAsync(ModuleRoot root, IContainerBackend backend, string username, string password, string database, CancellationToken cancellationToken)
    {
        var resolved = root.Resolve(PostgreSqlBuilder.Image);
        var key = string.Join('\0', resolved.Kind, resolved.Value, username, password, database);
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
        string osUser, initdb, server;
        if (root.IsImage)
        {
            // The official image and images like it: a postgres user, the server programs on the image's PATH.
            (osUser, initdb, server) = ("postgres", "initdb", "postgres");
        }
        else
        {
            var rootPath = root.Kind == ModuleRootKind.Directory ? root.Value! : "/";
            var bin = FindBinDirectory(rootPath);
            osUser = File.Exists(Path.Combine(rootPath, "etc/passwd"))
                && File.ReadLines(Path.Combine(rootPath, "etc/passwd")).Any(line => line.StartsWith("postgres:", StringComparison.Ordinal))
                ? "postgres"
                : "nobody";
            (initdb, server) = ($"{bin}/initdb", $"{bin}/postgres");
        }

        SweepOrphans();
        var work = Directory.CreateTempSubdirectory($"{s_prefix}{Environment.ProcessId}-");
        s_directories[work.FullName] = StartReaper(work.FullName);
        try
        {
            return await InitDbAsync(root, backend, work, osUser, initdb, server, username, password, database).ConfigureAwait(false);
        }
        catch
        {
            DeleteDirectory(work.FullName);
            throw;
        }
    }

    private static async Task<PostgreSqlTemplate> InitDbAsync(
        ModuleRoot root, IContainerBackend backend, DirectoryInfo work, string osUser, string initdb, string server, string username, string password, string database)
    {
        // initdb creates data/ in here as osUser, who is not this directory's owner (as root, or with subordinate ids): it
        // may write as in /tmp.
        work.UnixFileMode = (UnixFileMode)Convert.ToInt32("1777", 8);
        await File.WriteAllTextAsync(Path.Combine(work.FullName, "pw"), password).ConfigureAwait(false);
        File.SetUnixFileMode(Path.Combine(work.FullName, "pw"), (UnixFileMode)Convert.ToInt32("644", 8));

        var script = string.Join('\n',
            "set -e",
            // Deletable by its maker whoever owns it (see remarks), also when initdb fails half-way; each server makes its
            // own view of data/ 0700 again.
            "trap 'chmod -R a+rwX /template/data 2>/dev/null || true' EXIT",
            // 1 MiB WAL segments (initdb's default is 16): a server's first write opens the current segment, which the
            // copy-on-write view then copies whole into the server's own layer, on the test's path (9-13 ms for 16 MiB here).
            $"'{initdb}' -D /template/data --username='{username}' --pwfile=/template/pw --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C --no-sync --wal-segsize={WalSegmentMegabytes} >/dev/null",
            // Any client address: Docker's port publishing connects from its bridge, not from loopback.
            "echo 'host all all all scram-sha-256' >> /template/data/pg_hba.conf",
            database == "postgres" ? "true" : $"echo 'CREATE DATABASE \"{database}\"' | '{server}' --single -D /template/data -c fsync=off postgres >/dev/null");
        var initdbContainer = await root.Apply(new ContainerBuilder(), backend, PostgreSqlBuilder.Image)
            .WithUser(osUser)
            .WithBindMount(work.FullName, "/template")
            .WithEntrypoint("/bin/sh", "-c", script)
            .StartAsync().ConfigureAwait(false);
        await using (initdbContainer.ConfigureAwait(false))
        {
            var exitCode = await initdbContainer.WaitForExitAsync().ConfigureAwait(false);
            File.Delete(Path.Combine(work.FullName, "pw"));
            if (exitCode != 0)
            {
                throw new InvalidOperationException(
                    $"PostgreSQL's initdb for the template (user {username}, database {database}) failed with exit code {exitCode}:\n{string.Join('\n', initdbContainer.GetLogs())}");
            }
        }

        work.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        return new PostgreSqlTemplate(osUser, server, Path.Combine(work.FullName, "data"));
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
