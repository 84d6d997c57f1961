using IsoTest.Docker;
using IsoTest.Engine;
using IsoTest.Modules.Http;
using IsoTest.Modules.PostgreSql;
using IsoTest.Modules.Redis;
using IsoTest.TestSupport;

namespace IsoTest.Modules.Tests;

/// <summary>
/// The two real backends, one of each per test class: the built-in engine and the local Docker daemon. Both have the
/// modules' images: there is no registry here to pull postgres:16, redis:7 or busybox:1.36 from, so the module image
/// variables name the images .ci/images.sh made (Docker has them by name; the engine loads them from the layout).
/// </summary>
public sealed class Backends : IAsyncLifetime
{
    private static int s_live;

    static Backends()
    {
        foreach (var (variable, image) in new[]
        {
            (PostgreSqlBuilder.ImageVariable, DebianImages.Postgres),
            (RedisBuilder.ImageVariable, DebianImages.Redis),
            (HttpServerBuilder.ImageVariable, DebianImages.Busybox),
        })
        {
            if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(variable)))
            {
                Environment.SetEnvironmentVariable(variable, image);
            }
        }
    }

    public Backends() => Interlocked.Increment(ref s_live);

    public IContainerBackend Engine { get; } = EngineBackend.Create();

    public IContainerBackend Docker { get; } = DockerBackend.Create();

    public Task InitializeAsync() => DebianImages.MakeAvailableAsync(Engine);

    public async Task DisposeAsync()
    {
        // The templates are shared by the whole process: only the last live class removes them, or a class that ends
        // first would delete one another class is still copying (initdb saw its files vanish). The test host is
        // ended without ProcessExit, so this is what removes them.
        if (Interlocked.Decrement(ref s_live) == 0)
        {
            PostgreSqlTemplate.DeleteAll();
        }

        await Engine.DisposeAsync();
        await Docker.DisposeAsync();
    }
}

/// <summary>
/// A root filesystem holding host programs at their host paths with the shared libraries they load (from ldd), plus
/// busybox as /bin/sh: what Docker runs with FromDirectory (it cannot see the host's files, and there is no registry here).
/// </summary>
public static class HostProgramsRootFs
{
    public static async Task<string> BuildAsync(string directory, IEnumerable<string> programs, IEnumerable<string> trees)
    {
        foreach (var dir in new[] { "bin", "etc", "tmp", "proc", "dev", "sys", "var/lib/postgresql", "var/run/postgresql" })
        {
            Directory.CreateDirectory(Path.Combine(directory, dir));
        }

        File.SetUnixFileMode(Path.Combine(directory, "tmp"), (UnixFileMode)Convert.ToInt32("1777", 8));
        File.Copy("/bin/busybox", Path.Combine(directory, "bin/busybox"));
        File.CreateSymbolicLink(Path.Combine(directory, "bin/sh"), "busybox");
        await File.WriteAllTextAsync(Path.Combine(directory, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n" + PasswdLine("postgres") + PasswdLine("nobody"));
        await File.WriteAllTextAsync(Path.Combine(directory, "etc/group"), "root:x:0:\n");

        var files = new HashSet<string>(StringComparer.Ordinal);
        foreach (var program in programs)
        {
            files.Add(program);
            foreach (var library in await LibrariesAsync(program))
            {
                files.Add(library);
            }
        }

        foreach (var tree in trees.Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(tree, "*", SearchOption.AllDirectories))
            {
                files.Add(file);
                if (file.EndsWith(".so", StringComparison.Ordinal))
                {
                    foreach (var library in await LibrariesAsync(file))
                    {
                        files.Add(library);
                    }
                }
            }
        }

        foreach (var file in files)
        {
            var target = Path.Combine(directory, file.TrimStart('/'));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (!File.Exists(target))
            {
                File.Copy(file, target);
            }
        }

        return directory;
    }

    private static string PasswdLine(string user) =>
        File.ReadLines("/etc/passwd").FirstOrDefault(l => l.StartsWith(user + ":", StringComparison.Ordinal)) is { } line ? line + "\n" : "";

    private static async Task<IEnumerable<string>> LibrariesAsync(string binary)
    {
        using var ldd = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("ldd", binary) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await ldd.StandardOutput.ReadToEndAsync();
        await ldd.WaitForExitAsync();
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
        return output.Split('\n')
            .Select(l => l.Contains("=>", StringComparison.Ordinal) ? l[(l.IndexOf("=>", StringComparison.Ordinal) + 2)..] : l)
            .Select(l => l.Trim().Split(' ')[0])
            .Where(p => p.StartsWith('/') && File.Exists(p))
            .SelectMany(p => new[] { p, Path.GetFullPath(new FileInfo(p).ResolveLinkTarget(true)?.FullName ?? p) })
            .ToArray();
    }
}

/// <summary>
/// The images Docker imports for FromDirectory roots (<c>isotest-dir:*</c>, kept by design for reuse): a test that makes a
/// fresh root makes a fresh image, so it removes the ones it caused. The classes that do so share one collection, so
/// no other test imports at the same time.
/// </summary>
public sealed class DirectoryImages : IAsyncDisposable
{
    private readonly HashSet<string> _before;

    private DirectoryImages(HashSet<string> before) => _before = before;

    public static async Task<DirectoryImages> SnapshotAsync() => new([.. await ListAsync()]);

    public async ValueTask DisposeAsync()
    {
        var added = (await ListAsync()).Where(id => !_before.Contains(id)).ToArray();
        if (added.Length > 0)
        {
            var (exit, output) = await DockerAsync(["rmi", .. added]);
            Assert.True(exit == 0, $"docker rmi {string.Join(' ', added)} failed: {output}");
        }
    }

    private static async Task<string[]> ListAsync()
    {
        var (exit, output) = await DockerAsync(["image", "ls", "-q", "--no-trunc", "--filter", "reference=isotest-dir"]);
        Assert.True(exit == 0, $"docker image ls failed: {output}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToArray();
    }

    private static async Task<(int Exit, string Output)> DockerAsync(string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("docker") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var docker = System.Diagnostics.Process.Start(start)!;
        var output = await docker.StandardOutput.ReadToEndAsync();
        var error = await docker.StandardError.ReadToEndAsync();
        await docker.WaitForExitAsync();
        return (docker.ExitCode, output + error);
    }
}

[CollectionDefinition(Name)]
public sealed class DirectoryImageTests
{
    public const string Name = "Docker imports directory roots";
}
