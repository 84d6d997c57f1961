using System.Diagnostics;

namespace IsoTest.TestSupport;

/// <summary>
/// The real Debian images .ci/images.sh builds from Debian's mirror (bookworm minbase, and PostgreSQL 15 and Redis 7
/// on it), and busybox from busybox-static: in the local dockerd under their names, and as one OCI layout the engine
/// loads. Built once per machine; a test run as root builds them when the cache is missing, a rootless one is told to
/// run the script.
/// </summary>
public static class DebianImages
{
    public const string Debian = "isotest/debian:bookworm";

    public const string Postgres = "isotest/postgres:15-bookworm";

    public const string Redis = "isotest/redis:7-bookworm";

    /// <summary>Made by .ci/docker-setup.sh from busybox-static; .ci/images.sh puts it into the layout too.</summary>
    public const string Busybox = "isotest/busybox:latest";

    private static readonly SemaphoreSlim Gate = new(1, 1);

    public static string Cache => Environment.GetEnvironmentVariable("ISOTEST_IMAGE_CACHE") is { Length: > 0 } c ? c : "/var/cache/isotest/images";

    /// <summary>The OCI layout holding them all (docker.io/isotest/debian:bookworm, docker.io/isotest/postgres:15-bookworm, ...).</summary>
    public static string Layout => Path.Combine(Cache, "oci");

    /// <summary>Makes sure the images exist (in dockerd and as the layout), running .ci/images.sh as root when needed.</summary>
    public static void EnsureBuilt()
    {
        if (File.Exists(Path.Combine(Cache, "stamp")) && File.Exists(Path.Combine(Layout, "index.json")))
        {
            return;
        }

        var script = FindScript() ?? throw new InvalidOperationException($"The Debian images are not in {Cache} and .ci/images.sh was not found above {AppContext.BaseDirectory}: run .ci/images.sh as root.");
        if (Environment.UserName != "root" && Environment.GetEnvironmentVariable("USER") != "root" && !IsRoot())
        {
            throw new InvalidOperationException($"The Debian images are not in {Cache}: run {script} as root once (it caches them), then run the tests again.");
        }

        using var p = Process.Start(new ProcessStartInfo(script) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{script} exited {p.ExitCode}: {stderr}{stdout.Result}");
        }
    }

    /// <summary>Makes the images available to <paramref name="backend"/>: dockerd has them by name; the engine loads the layout into its store.</summary>
    public static async Task MakeAvailableAsync(IContainerBackend backend)
    {
        EnsureBuilt();
        if (backend is IsoTest.Engine.EngineBackend engine)
        {
            await Gate.WaitAsync();
            try
            {
                await engine.LoadImagesAsync(Layout);
            }
            finally
            {
                Gate.Release();
            }
        }
    }

    private static bool IsRoot() => File.ReadAllLines("/proc/self/status").Any(l => l.StartsWith("Uid:", StringComparison.Ordinal) && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0");

    private static string? FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, ".ci", "images.sh");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
