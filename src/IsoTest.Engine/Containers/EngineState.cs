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

        uint uid = Credentials.EffectiveUid;
        if (uid == 0)
        {
            return "/run/isotest";
        }

        var runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return !string.IsNullOrEmpty(runtime) && System.IO.Directory.Exists(runtime)
            ? Path.Combine(runtime, "isotest")
            : Path.Combine(Path.GetTempPath(), $"isotest-{uid}");
    }

    /// <summary>Owner-only: the state root, each engine's directory and every staged file.</summary>
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// Makes the state root (0700) when missing and checks it: refused when it is a symlink, not a directory, not
    /// owned by the caller, or writable by group or others. Another user could have pre-created it (the
    /// /tmp/isotest-&lt;uid&gt; fallback) to have the sweep delete, or a container read, what it points at; so this
    /// runs before the sweep.
    /// </summary>
    /// <returns>The root as a full path.</returns>
    /// <exception cref="BackendUnavailableException">The root is unsafe; the message names it and the fix.</exception>
    public static string EnsureRoot(string root)
    {
        root = Path.GetFullPath(root);
        if (!PathStatus.Of(root).Exists)
        {
            try
            {
                System.IO.Directory.CreateDirectory(root, OwnerOnlyDirectory);
            }
            catch (IOException)
            {
                // Made by someone else in between: checked below like any existing root.
            }
        }

        CheckRoot(root);
        return root;
    }

    /// <summary>Makes this engine's directory (0700) in the checked root and locks it.</summary>
    public static EngineState Acquire(string root)
    {
        root = EnsureRoot(root);
        var engineId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 4));
        var directory = Path.Combine(root, engineId);
        System.IO.Directory.CreateDirectory(directory, OwnerOnlyDirectory);

        // .NET maps FileShare.None to flock(LOCK_EX) on Unix; the kernel drops it when we die, even by kill -9.
        // The file is locked under another name and renamed into place: opened as "lock" directly, it would exist
        // unlocked between open and flock, and another process's sweep (DeadEngines) that probes it then takes this
        // live engine for a dead one and deletes its directory (seen with test projects starting engines in parallel).
        var staging = Path.Combine(directory, "lock.new");
        var lockFile = new FileStream(staging, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        File.Move(staging, LockPath(directory));
        return new EngineState(root, engineId, lockFile);
    }

    /// <summary>Writes a file to stage into a container: owner-only (0600), never over an existing file or through a symlink.</summary>
    public static void WritePrivateFile(string path, ReadOnlySpan<byte> content)
    {
        using var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        file.Write(content);
    }

    private static void CheckRoot(string root)
    {
        var status = PathStatus.Of(root);
        var uid = PathStatus.EffectiveUid;
        var fix = $"Remove it if it is not yours (another user may have planted it), or set ISOTEST_STATE_DIR{(uid == 0 ? "" : " (or XDG_RUNTIME_DIR)")} to a directory only you can write.";
        string? problem = status switch
        {
            { Exists: false } => "could not be created",
            { IsSymlink: true } => $"is a symlink (to {new DirectoryInfo(root).LinkTarget})",
            { IsDirectory: false } => "is not a directory",
            _ when status.Uid != uid => $"is owned by uid {status.Uid}, not by this user (uid {uid})",
            _ when (status.Mode & 0b000_010_010) != 0 => $"is writable by {((status.Mode & 0b000_000_010) != 0 ? "others" : "its group")} (mode {Convert.ToString(status.Mode & 0x1FF, 8)})",
            _ => null,
        };

        if (problem is not null)
        {
            throw new BackendUnavailableException($"The engine's state directory {root} {problem}: the engine will not keep its state there. {fix}"
                + (problem.StartsWith("is writable", StringComparison.Ordinal) && status.Uid == uid ? $" If it is yours: chmod 700 {root}." : ""));
        }
    }

    /// <summary>
    /// Whether a name has the shape of the ids <see cref="Acquire"/> makes (8 lowercase hex digits). The sweeps act
    /// only on such names: the cgroup parent may be shared (a systemd slice, a CI runner's group, a test's scratch
    /// group), and a group or directory someone else made there is not ours to remove.
    /// </summary>
    public static bool IsEngineId(string name) => name.Length == 8 && name.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');

    /// <summary>Engine ids under <paramref name="root"/> whose owner is gone (their lock is free).</summary>
    public static IReadOnlyList<string> DeadEngines(string root)
    {
        var dead = new List<string>();
        if (!System.IO.Directory.Exists(root))
        {
            return dead;
        }

        foreach (var directory in System.IO.Directory.EnumerateDirectories(root).Where(d => IsEngineId(Path.GetFileName(d))))
        {
            var lockPath = LockPath(directory);
            if (!File.Exists(lockPath))
            {
                // Either being created right now, being removed by its engine, or a half-made leftover: only a stale
                // one is dead. (.NET gives 1601 as the creation time of a directory that is gone by now.)
                var created = System.IO.Directory.GetCreationTimeUtc(directory);
                if (created < DateTime.UtcNow.AddMinutes(-1) && System.IO.Directory.Exists(directory))
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

    /// <summary>The lock file of an engine directory: present only while locked, or after its engine died.</summary>
    internal static string LockPath(string engineDirectory) => Path.Combine(engineDirectory, "lock");

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
        RemoveRootIfLast(Root);
    }

    /// <summary>
    /// A root directly in the temporary directory (the rootless /tmp/isotest-&lt;uid&gt; fallback, or an ISOTEST_STATE_DIR
    /// there) goes with its last engine, so a run leaves nothing in /tmp; /run/isotest and $XDG_RUNTIME_DIR/isotest stay.
    /// rmdir removes only an empty directory: another engine's directory keeps it, and one that is making its own
    /// directory right now recreates the root owner-only (Acquire).
    /// </summary>
    private static void RemoveRootIfLast(string root)
    {
        if (!string.Equals(Path.GetDirectoryName(root), Path.TrimEndingDirectorySeparator(Path.GetTempPath()), StringComparison.Ordinal))
        {
            return;
        }

        try
        {
            System.IO.Directory.Delete(root, recursive: false);
        }
        catch (IOException)
        {
            // Not empty (another engine lives there) or already gone.
        }
        catch (UnauthorizedAccessException)
        {
            // Not ours to remove: CheckRoot refused it, or it is read-only.
        }
    }
}
