namespace IsoTest.Engine.Native;

/// <summary>What the agent reported when a step failed: the step, the errno and the path concerned.</summary>
internal sealed record AgentError(string Stage, int Errno, string Detail)
{
    public string ErrnoText => Libc.ErrnoText(Errno);

    public override string ToString() => $"{Stage}: {ErrnoText} (errno {Errno}) {Detail}";
}

/// <summary>
/// The one map from what the agent reports (a stage and an errno) to the exception a user sees, with
/// the fix. Nothing outside Native/ interprets an errno: the rest of the engine calls these.
/// </summary>
internal static class AgentErrors
{
    /// <summary>The raw wait status of a process killed by SIGKILL: what a container whose init died without reporting ended with.</summary>
    public const int KilledStatus = Libc.SIGKILL;

    /// <summary>SIGTERM, what a stop sends first.</summary>
    public const int StopSignal = Libc.SIGTERM;

    /// <summary>A raw wait status in Docker's exit code convention: the exit status, or 128 + the signal.</summary>
    public static int ExitCode(int rawStatus)
    {
        int signal = rawStatus & 0x7f;
        return signal == 0 ? (rawStatus >> 8) & 0xff : 128 + signal;
    }

    /// <summary>Setting the container up failed (the agent's `error`).</summary>
    /// <param name="containerId">The container being set up.</param>
    /// <param name="e">What the agent reported.</param>
    /// <param name="outputTail">The tail of the container's output.</param>
    /// <param name="cgroupJoinRefused">The cgroup driver's account of why a join may be refused (EACCES), when there is a cgroup.</param>
    /// <param name="isRoot">Whether the engine runs as root (rootless overlay needs a newer kernel).</param>
    public static ContainerStartException SetupFailed(string containerId, AgentError e, string? outputTail, Func<string>? cgroupJoinRefused, bool isRoot)
    {
        var kernel = Environment.OSVersion.Version;
        var hint = (e.Stage, e.Errno) switch
        {
            ("cgroup", Libc.EACCES) when cgroupJoinRefused is not null => cgroupJoinRefused(),
            ("cgroup", _) => "the container could not join its cgroup; check that the cgroup exists and is writable",
            ("idmap", _) => "newuidmap/newgidmap refused the subordinate id maps (the detail is what they said): check this user's ranges in /etc/subuid and /etc/subgid (README, \"Rootless\")",
            ("uidmap" or "gidmap", _) => "the user namespace id maps were refused; check /proc/sys/user/max_user_namespaces and that unprivileged user namespaces are allowed",
            ("clone", Libc.EACCES or Libc.EPERM) => "creating namespaces was refused; rootless containers need unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)",
            (_, Libc.ENOSYS) => $"this kernel (Linux {kernel}) lacks a system call the engine needs here; it needs Linux 5.6 or newer (openat2; README, \"Kernel features\")",
            ("root", Libc.EPERM) when !isRoot && kernel < new Version(5, 11) =>
                $"a rootless writable root needs overlayfs in a user namespace, which Linux 5.11 brought (this is Linux {kernel}); run as root or on a newer kernel",
            (_, Libc.ENOENT) => "a path does not exist; check the root filesystem, mount sources and targets",
            _ => "",
        };
        return new ContainerStartException(
            containerId,
            $"Container {containerId} could not be created: {e.Stage} failed{(e.Detail.Length > 0 ? $" for '{e.Detail}'" : "")}: {e.ErrnoText} (errno {e.Errno}){(hint.Length > 0 ? $": {hint}" : "")}.",
            outputTail);
    }

    /// <summary>The command, or an exec'd one, could not be executed (`execfail`, `exec-failed`).</summary>
    public static ExecFailedException ExecFailed(string containerId, AgentError e)
    {
        var reason = e.Stage switch
        {
            "chdir" => ExecFailure.BadWorkingDirectory,
            "user" => ExecFailure.BadUser,
            "exec" when e.Errno is Libc.ENOENT or Libc.ENOTDIR => ExecFailure.NotFound,
            "exec" when e.Errno is Libc.EACCES or Libc.ENOEXEC => ExecFailure.NotExecutable,
            _ => ExecFailure.Other,
        };
        return new ExecFailedException(containerId, reason, e.Detail, e.Errno, e.ErrnoText);
    }
}
