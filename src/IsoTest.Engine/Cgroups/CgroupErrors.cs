using System.Globalization;

namespace IsoTest.Engine.Cgroups;

/// <summary>The one place that words cgroup failures: what could not be enforced, where, why, and the fix.</summary>
internal static class CgroupErrors
{
    /// <summary>Where the one-time set-up is written out, step by step, for v1 and v2.</summary>
    internal const string SetUpHint = "The one-time set-up is in IsoTest's README, \"Caps without root\".";

    /// <summary>True for the outcomes that mean "this user may not make cgroups here".</summary>
    public static bool IsPermission(FsResult error) => error.Outcome is FsOutcome.Denied or FsOutcome.NotPermitted;

    /// <summary>The group could not be made (no permission: rootless without delegation, read-only cgroupfs).</summary>
    public static ResourceLimitException CannotCreate(int version, string cap, string containerId, string path, FsResult error, string delegateDir)
    {
        var fix = IsPermission(error)
            ? version == 1
                ? $"Run as root, or delegate a cgroup to your user once, as root, for each controller needed: mkdir -p {delegateDir} && chown -R $USER {delegateDir} "
                  + $"(or set {CgroupDriver.ParentVariable} to a cgroup you own); or drop the cap. {SetUpHint}"
                : $"Run as root, or delegate a cgroup to your user once: systemd's Delegate=yes for user@.service, then set {CgroupDriver.ParentVariable} "
                  + $"to a group under user.slice/user-$UID.slice/user@$UID.service (or, as root: mkdir -p {delegateDir} && chown -R $USER {delegateDir}); or drop the cap. {SetUpHint}"
            : "Check that cgroupfs is mounted read-write and the path is a cgroup directory.";
        return new ResourceLimitException($"Container {containerId}: cannot enforce {cap}: creating cgroup {path} failed: {error.Text}. {fix}");
    }

    /// <summary>The controller a cap needs is not there.</summary>
    public static ResourceLimitException MissingController(int version, string cap, string containerId, string controller, string where, string? why = null)
    {
        var fix = version == 1
            ? $"Mount it (sudo mkdir -p {where} && sudo mount -t cgroup -o {controller} cgroup {where}) or enable it in the kernel; or drop the cap."
            : $"Enable it for the parent (echo +{controller} | sudo tee {Path.GetDirectoryName(where)}/cgroup.subtree_control), or have it delegated "
              + $"(systemd: Delegate={controller}), or set {CgroupDriver.ParentVariable} to a cgroup that has it; or drop the cap.";
        return new ResourceLimitException($"Container {containerId}: cannot enforce {cap}: the '{controller}' cgroup controller is not available ({where}). {(why is null ? "" : why + " ")}{fix}");
    }

    /// <summary>v1: init could not write itself into a tasks file.</summary>
    public static string JoinRefusedV1(IReadOnlyList<string> groups, string delegateDir) =>
        $"the kernel refused to move it into {string.Join(", ", groups)}: the tasks files must be writable by this user (sudo chown -R $USER {delegateDir}), or run as root";

    /// <summary>
    /// v2: the kernel checks cgroup.procs of the nearest group above both the mover's group and the target
    /// (cgroup_procs_write_permission), not just the target's, so a delegated subtree works only for a
    /// process already inside it. The mover's group is the engine's spawner's, where the engine ran when it started
    /// its first container.
    /// </summary>
    public static string JoinRefusedV2(string target, string? ownGroup, string? commonAncestor) =>
        $"the kernel refused to move it into {target}: cgroup v2 lets a process move a task only if it may write cgroup.procs of the common ancestor "
        + $"of the task's group and the target{(commonAncestor is null ? "" : $" ({commonAncestor})")}, and the engine's agents start in {ownGroup ?? "a group it cannot read"} (where the engine ran when it started its first container). "
        + "Run the engine inside the subtree delegated to you (systemd: systemd-run --user -p Delegate=yes --scope ...; by hand: move your shell into a leaf group of it) "
        + $"and set {CgroupDriver.ParentVariable} to a group in that subtree";

    /// <summary>A limit file refused the value.</summary>
    public static ResourceLimitException WriteFailed(int version, string cap, string containerId, string file, string value, FsResult error, string delegateDir)
    {
        var why = Path.GetFileName(file) switch
        {
            _ when IsPermission(error) => $"The cgroup is not writable by this user: run as root or delegate {delegateDir} to your user (sudo chown -R $USER {delegateDir}).",
            var f when error.Outcome == FsOutcome.Invalid && f.StartsWith("memory.", StringComparison.Ordinal) => "The kernel refused this memory limit (too small for it): raise the memory limit.",
            var f when error.Outcome == FsOutcome.Busy && f.StartsWith("memory.", StringComparison.Ordinal) => "The kernel refused this memory limit (below what is already charged): raise the memory limit.",
            var f when error.Outcome == FsOutcome.Invalid && f.StartsWith("cpu.", StringComparison.Ordinal) => "The CPU quota is outside what the kernel accepts (at least 0.01 CPU, i.e. 1000 us per 100 ms): raise the CPU limit.",
            var f when f.StartsWith("cpuset.", StringComparison.Ordinal) => $"The CPUs must be a subset of the parent's (see {Path.GetDirectoryName(Path.GetDirectoryName(file))}/cpuset.cpus) in cpuset syntax such as 0-1 or 0,2.",
            _ when error.Outcome == FsOutcome.NotFound => $"The file does not exist: the controller it belongs to is not enabled for this group{(version == 2 ? " (check cgroup.subtree_control of the parents)" : "")}.",
            _ => "The kernel refused the value.",
        };
        return new ResourceLimitException($"Container {containerId}: cannot enforce {cap}: writing '{value}' to {file} failed: {error.Text}. {why}");
    }

    /// <summary>How caps are named in messages: the setting the user wrote.</summary>
    public static string Describe(string controller, ResourceLimits limits) => controller switch
    {
        "memory" => $"memory limit {limits.MemoryBytes?.ToString(CultureInfo.InvariantCulture) ?? "(none)"} bytes",
        "cpu" => $"CPU limit {limits.Cpus?.ToString(CultureInfo.InvariantCulture) ?? "(none)"}",
        "pids" => $"pids limit {limits.Pids?.ToString(CultureInfo.InvariantCulture) ?? "(none)"}",
        "cpuset" => $"cpuset '{limits.CpusetCpus}'",
        "devices" => "the device allowlist (Docker's: null, zero, full, random, urandom, tty, console, ptmx, pts, net/tun)",
        _ => controller,
    };
}
