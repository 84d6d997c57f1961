using IsoTest.Engine.Native;

namespace IsoTest.Engine.Containers;

/// <summary>
/// One state directory per engine instance, holding a lock file that the owning process keeps locked
/// for its whole life. A directory whose lock can be taken belongs to a dead engine: its leftovers
/// (cgroups, staged files) are swept by the next engine to start.
/// </summary>
internal sealed class EngineState : IDisposable
{
    private readonly FileStream _lock;

    private EngineState(string root, string engineId, FileStream lockFile)
    {
        Root = root;
        EngineId = engineId;
        Directory = Path.Combine(root, engineId);
        _lock = lockFile;
    }

    public string Root { get; }

    public string EngineId { get; }

    public string Directory { get; }

    /// <summary>/run/isotest for root, $XDG_RUNTIME_DIR/isotest (or /tmp/isotest-&lt;uid&gt;) rootless.</summary>
    public static string DefaultRoot()
    {
        if (Environment.GetEnvironmentVariable("ISOTEST_STATE_DIR") is { Length: > 0 } configured)
        {
            return configured;
        }

        uint uid = Libc.geteuid();
        if (uid == 0)
        {
            return "/run/isotest";
        }

        var runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return !string.IsNullOrEmpty(runtime) && System.IO.Directory.Exists(runtime)
            ? Path.Combine(runtime, "isotest")
            : Path.Combine(Path.GetTempPath(), $"isotest-{uid}");
    }

    public static EngineState Acquire(string root)
    {
        System.IO.Directory.CreateDirectory(root);
        var engineId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 4));
        var directory = Path.Combine(root, engineId);
        System.IO.Directory.CreateDirectory(directory);

        // .NET maps FileShare.None to flock(LOCK_EX) on Unix; the kernel drops it when we die, even by kill -9.
        var lockFile = new FileStream(Path.Combine(directory, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        return new EngineState(root, engineId, lockFile);
    }

    /// <summary>Engine ids under <paramref name="root"/> whose owner is gone (their lock is free).</summary>
    public static IReadOnlyList<string> DeadEngines(string root)
    {
        var dead = new List<string>();
        if (!System.IO.Directory.Exists(root))
        {
            return dead;
        }

        foreach (var directory in System.IO.Directory.EnumerateDirectories(root))
        {
            var lockPath = Path.Combine(directory, "lock");
            if (!File.Exists(lockPath))
            {
                // Either being created right now or a half-made leftover: only a stale one is dead.
                if (System.IO.Directory.GetCreationTimeUtc(directory) < DateTime.UtcNow.AddMinutes(-1))
                {
                    dead.Add(Path.GetFileName(directory));
                }

                continue;
            }

            try
            {
                using var probe = new FileStream(lockPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
                dead.Add(Path.GetFileName(directory));
            }
            catch (IOException)
            {
                // Locked: its engine is alive.
            }
        }

        return dead;
    }

    public static void RemoveDirectory(string root, string engineId)
    {
        try
        {
            System.IO.Directory.Delete(Path.Combine(root, engineId), recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    public void Dispose()
    {
        RemoveDirectory(Root, EngineId);
        _lock.Dispose();
    }
}
