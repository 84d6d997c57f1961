using System.Diagnostics;

namespace IsoTest.Packaging.Tests;

/// <summary>
/// The solution packed once into a local feed in a temporary directory, with a version no registry has (so a
/// restore can only take IsoTest's packages from this feed), and a PATH without a C compiler. Removed afterwards,
/// with the copies the restores put into the NuGet cache.
/// </summary>
public sealed class PackedFeed : IDisposable
{
    public PackedFeed()
    {
        Root = Directory.CreateTempSubdirectory("isotest-packaging-").FullName;
        Feed = Path.Combine(Root, "feed");
        Version = $"0.1.0-pkgtest.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        Repository = FindRepository();
        NoCompilerPath = MakeBinWithoutCompiler();

        // --no-build: the solution is built (.ci/run builds it first); packing must not rewrite what other test runs use.
        var pack = Run(Repository, "dotnet", "pack", "IsoTest.sln", "-c", "Release", "--no-build", "-nologo", "-v", "quiet",
            "-o", Feed, $"-p:Version={Version}");
        Assert.True(pack.ExitCode == 0, $"dotnet pack failed ({pack.ExitCode}):\n{pack.Output}");
    }

    public string Root { get; }

    public string Feed { get; }

    public string Version { get; }

    public string Repository { get; }

    /// <summary>A directory holding only <c>dotnet</c>: what a consumer's PATH must contain, and no cc, gcc or musl-gcc.</summary>
    public string NoCompilerPath { get; }

    public string Package(string id) => Path.Combine(Feed, $"{id}.{Version}.nupkg");

    public string SymbolPackage(string id) => Path.Combine(Feed, $"{id}.{Version}.snupkg");

    /// <summary>A fresh project directory outside the repository (no Directory.Build.props, no Directory.Packages.props) using this feed.</summary>
    public string NewProject(string name, string consumerSources)
    {
        var dir = Path.Combine(Root, name);
        Directory.CreateDirectory(dir);
        foreach (var file in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Consumers", consumerSources)))
        {
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        }

        // The local feed in addition to the configured sources (the registry serves xunit and the rest).
        File.WriteAllText(Path.Combine(dir, "NuGet.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="isotest-local-feed" value="{Feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(dir, "Directory.Build.props"), $"""
            <Project>
              <PropertyGroup>
                <IsoTestVersion>{Version}</IsoTestVersion>
              </PropertyGroup>
            </Project>
            """);
        return dir;
    }

    /// <summary>Runs a command with the compiler-free PATH and ISOTEST_BACKEND unset (auto, as for a new user).</summary>
    public (int ExitCode, string Output) RunAsConsumer(string workingDirectory, string file, params string[] args) =>
        Run(workingDirectory, file, args, env =>
        {
            env["PATH"] = NoCompilerPath;
            env.Remove("ISOTEST_BACKEND");
            env["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            env["DOTNET_NOLOGO"] = "1";
        });

    public static (int ExitCode, string Output) Run(string workingDirectory, string file, params string[] args) => Run(workingDirectory, file, args, null);

    private static (int ExitCode, string Output) Run(string workingDirectory, string file, string[] args, Action<IDictionary<string, string?>>? environment)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        environment?.Invoke(start.Environment);
        using var process = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromMinutes(15)))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return (-1, $"timed out after 15 minutes: {file} {string.Join(' ', args)}\n{output}");
        }

        process.WaitForExit();
        lock (output)
        {
            return (process.ExitCode, output.ToString());
        }
    }

    /// <summary>Is <paramref name="name"/> a C compiler driver (cc, gcc-12, x86_64-linux-gnu-gcc, musl-gcc, clang, ...)?</summary>
    public static bool IsCompiler(string name) =>
        System.Text.RegularExpressions.Regex.IsMatch(name, @"^(cc|c89|c99|c89-gcc|c99-gcc|cpp|tcc|musl-gcc|.*-?gcc(-[0-9.]+)?|.*-?g\+\+(-[0-9.]+)?|clang.*|.*-linux-gnu-.*)$");

    /// <summary>
    /// One directory with a link to every program on this PATH except the C compilers: the tools a user has
    /// (the SDK's commands use a few of them), without the means to build the agent.
    /// </summary>
    private string MakeBinWithoutCompiler()
    {
        var bin = Path.Combine(Root, "bin");
        Directory.CreateDirectory(bin);
        foreach (var dir in Environment.GetEnvironmentVariable("PATH")!.Split(':', StringSplitOptions.RemoveEmptyEntries).Where(Directory.Exists))
        {
            foreach (var program in Directory.EnumerateFiles(dir))
            {
                var name = Path.GetFileName(program);
                var link = Path.Combine(bin, name);
                if (!IsCompiler(name) && !File.Exists(link) && (File.GetUnixFileMode(program) & UnixFileMode.UserExecute) != 0)
                {
                    File.CreateSymbolicLink(link, Path.GetFullPath(program));
                }
            }
        }

        return bin;
    }

    private static string FindRepository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "IsoTest.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"IsoTest.sln not found above {AppContext.BaseDirectory}: run these tests from the repository's build output.");
    }

    public void Dispose()
    {
        Directory.Delete(Root, recursive: true);
        // The restores copied this version's packages into the NuGet cache; nothing else will ever use them.
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        if (Directory.Exists(cache))
        {
            foreach (var package in Directory.GetDirectories(cache, "isotest*"))
            {
                var version = Path.Combine(package, Version.ToLowerInvariant());
                if (Directory.Exists(version))
                {
                    Directory.Delete(version, recursive: true);
                }

                if (Directory.GetFileSystemEntries(package).Length == 0)
                {
                    Directory.Delete(package);
                }
            }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PackedFeedCollection : ICollectionFixture<PackedFeed>
{
    public const string Name = "packed feed";
}
