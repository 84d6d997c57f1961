namespace IsoTest.Engine;

/// <summary>
/// What the engine needs from the machine, checked before it starts so that the <c>auto</c> backend's choice
/// (and a failing first container) names the reason and the fix rather than an error from deep inside a start.
/// </summary>
internal static class EngineRequirements
{
    /// <summary>Checks this machine for this process.</summary>
    /// <exception cref="BackendUnavailableException">Not Linux, or a rootless engine without user namespaces.</exception>
    public static void Check()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new BackendUnavailableException("The built-in engine runs on Linux only: use the Docker backend (ISOTEST_BACKEND=docker, package IsoTest.Docker).");
        }

        Check(Environment.IsPrivilegedProcess, ReadSysctl);
    }

    /// <summary>Checks the kernel switches <paramref name="readSysctl"/> reports, for a root or a rootless engine.</summary>
    internal static void Check(bool root, Func<string, string?> readSysctl)
    {
        if (root)
        {
            return;
        }

        // Rootless, every container is a user namespace: these are the switches distributions use to forbid them.
        const string fix = "run the tests as root, or use Docker (ISOTEST_BACKEND=docker)";
        if (readSysctl("kernel/unprivileged_userns_clone") == "0")
        {
            throw new BackendUnavailableException(
                $"The built-in engine needs unprivileged user namespaces when not run as root, and this kernel forbids them (kernel.unprivileged_userns_clone=0): allow them with `sysctl -w kernel.unprivileged_userns_clone=1` (as root), or {fix}.");
        }

        if (readSysctl("user/max_user_namespaces") == "0")
        {
            throw new BackendUnavailableException(
                $"The built-in engine needs unprivileged user namespaces when not run as root, and this machine allows none (user.max_user_namespaces=0): raise it with `sysctl -w user.max_user_namespaces=15000` (as root), or {fix}.");
        }

        if (readSysctl("kernel/apparmor_restrict_unprivileged_userns") == "1")
        {
            throw new BackendUnavailableException(
                $"The built-in engine needs unprivileged user namespaces when not run as root, and AppArmor restricts them (kernel.apparmor_restrict_unprivileged_userns=1, Ubuntu 23.10 and later): allow them with `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (as root), or {fix}.");
        }
    }

    /// <summary>
    /// What a rootless engine cannot do on this kernel although it runs, said once at start (null: nothing). Below
    /// Linux 6.6 tmpfs keeps no user.* xattrs, which overlayfs in a user namespace (userxattr) stores its opaque
    /// and whiteout markers in: the upper dirs live on the container's staging tmpfs, so overlayfs runs without
    /// them, and removing a directory that comes from the host, an image or a copy-on-write source fails with EIO.
    /// </summary>
    internal static string? RootlessKernelNote(bool root, Version kernel) =>
        root || kernel >= new Version(6, 6)
            ? null
            : $"on Linux {kernel.Major}.{kernel.Minor} a rootless container cannot remove a directory that comes from the host, an image or a copy-on-write mount "
              + "(rmdir fails with EIO: tmpfs keeps user.* xattrs, which overlayfs needs for it, only from Linux 6.6); creating, writing and removing files works. "
              + "Run as root or on Linux 6.6 or newer where a test removes such directories.";

    /// <summary>Reads <c>/proc/sys/&lt;name&gt;</c>, trimmed; null when the kernel has no such switch.</summary>
    public static string? ReadSysctl(string name)
    {
        try
        {
            return File.ReadAllText(Path.Combine("/proc/sys", name)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
