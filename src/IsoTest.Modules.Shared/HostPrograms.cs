namespace IsoTest.Modules;

/// <summary>Finds a server's programs on this machine, for the host and directory roots.</summary>
internal static class HostPrograms
{
    /// <summary>The first directory on PATH, then among <paramref name="extra"/>, that holds every one of <paramref name="programs"/>.</summary>
    /// <returns>The directory, or null when none has them all.</returns>
    public static string? FindDirectory(IEnumerable<string> extra, params string[] programs)
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries);
        return path.Concat(extra).FirstOrDefault(dir => programs.All(p => File.Exists(Path.Combine(dir, p))));
    }
}
