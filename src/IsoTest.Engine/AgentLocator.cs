using System.Runtime.InteropServices;

namespace IsoTest.Engine;

/// <summary>
/// Finds the prebuilt init agent (<c>isotest-init</c>, static) the engine spawns for every container.
/// It ships in the IsoTest.Engine package under <c>runtimes/&lt;rid&gt;/native/</c>, so a consumer needs no C compiler.
/// </summary>
internal static class AgentLocator
{
    public const string FileName = "isotest-init";

    /// <summary>The runtime identifiers whose agent can run here, most specific first (a static binary runs on glibc and musl alike).</summary>
    internal static IEnumerable<string> RuntimeIdentifiers()
    {
        var arch = RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => "x64",
            Architecture.Arm64 => "arm64",
            var other => other.ToString().ToLowerInvariant(),
        };
        return new[] { RuntimeInformation.RuntimeIdentifier, $"linux-musl-{arch}", $"linux-{arch}" }.Distinct();
    }

    /// <summary>
    /// Where the agent may be, in order: next to the application (a build of this repository, or a
    /// RID-specific build that flattens native assets), next to the engine assembly, below them in
    /// <c>runtimes/&lt;rid&gt;/native</c> (a portable build or publish of a consumer, the dotnet tool), and the NuGet
    /// cache's layout (<c>lib/net10.0/IsoTest.Engine.dll</c> beside <c>runtimes/</c>, when the assembly is loaded from there).
    /// </summary>
    internal static IEnumerable<string> Candidates()
    {
        var appDir = AppContext.BaseDirectory;
        var assemblyDir = Path.GetDirectoryName(typeof(AgentLocator).Assembly.Location);
        string[] bases = string.IsNullOrEmpty(assemblyDir) || Path.GetFullPath(assemblyDir) == Path.GetFullPath(appDir)
            ? [appDir]
            : [appDir, assemblyDir];
        foreach (var dir in bases)
        {
            yield return Path.Combine(dir, FileName);
        }

        foreach (var rid in RuntimeIdentifiers())
        {
            foreach (var dir in bases)
            {
                yield return Path.Combine(dir, "runtimes", rid, "native", FileName);
            }

            if (!string.IsNullOrEmpty(assemblyDir))
            {
                yield return Path.GetFullPath(Path.Combine(assemblyDir, "..", "..", "runtimes", rid, "native", FileName));
            }
        }
    }

    /// <summary>The agent to spawn, made executable if it lost its mode bits (NuGet does not keep them).</summary>
    /// <exception cref="BackendUnavailableException">It is nowhere, or cannot be made executable.</exception>
    public static string Find() => Find(Candidates());

    /// <summary>The first of <paramref name="places"/> that exists, made executable.</summary>
    internal static string Find(IEnumerable<string> places)
    {
        var candidates = places.ToList();
        var path = candidates.FirstOrDefault(p => File.Exists(p) && IsForThisMachine(p))
            ?? throw new BackendUnavailableException(
                $"The built-in engine's init agent ({FileName}) for {string.Join(" or ", RuntimeIdentifiers())} was not found " +
                $"(looked in: {string.Join(", ", candidates.Distinct())}). The IsoTest.Engine package carries it prebuilt for linux-x64 " +
                "and linux-arm64 under runtimes/<rid>/native/: reference the package (not a copy of its DLL), or build IsoTest.Engine from " +
                "source (needs a C compiler); or use Docker (ISOTEST_BACKEND=docker).");
        return EnsureExecutable(path);
    }

    /// <summary>
    /// True unless <paramref name="path"/> is an ELF file for another architecture: a tool or output built on x64 may
    /// also hold an agent flat next to the assembly, and on arm64 the one under runtimes/linux-arm64 must win.
    /// </summary>
    internal static bool IsForThisMachine(string path)
    {
        // ELF header: magic at 0, e_machine (little-endian, 16 bits) at 18. EM_X86_64 = 62, EM_AARCH64 = 183.
        Span<byte> header = stackalloc byte[20];
        using (var file = File.OpenRead(path))
        {
            if (file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length
                || header[0] != 0x7f || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F')
            {
                return true; // not ELF: let the spawn report what it is
            }
        }

        var machine = header[18] | (header[19] << 8);
        return RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => machine == 62,
            Architecture.Arm64 => machine == 183,
            _ => true,
        };
    }

    private static string EnsureExecutable(string path)
    {
        const UnixFileMode execute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        var mode = File.GetUnixFileMode(path);
        if ((mode & UnixFileMode.UserExecute) != 0)
        {
            return path;
        }

        try
        {
            File.SetUnixFileMode(path, mode | execute);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new BackendUnavailableException(
                $"The built-in engine's init agent {path} is not executable and this user cannot change that ({e.Message}): run `chmod +x {path}` once, or use Docker (ISOTEST_BACKEND=docker).", e);
        }

        return path;
    }
}
