namespace IsoTest.Engine.Cgroups;

/// <summary>
/// The kernel calls a cgroup driver makes, behind one seam so the v2 driver can be tested against a fake
/// tree on a machine that runs v1 (youki's libcgroups does the same). Results are <see cref="FsResult"/>s:
/// the drivers turn specific outcomes (denied, invalid, busy, not found) into specific messages.
/// </summary>
internal interface ICgroupFileSystem
{
    /// <summary>mkdir(2). Ok, or Exists when it exists, or another outcome.</summary>
    FsResult CreateDirectory(string path);

    /// <summary>rmdir(2). Ok, or NotFound when already gone, Busy while processes or children remain.</summary>
    FsResult RemoveDirectory(string path);

    /// <summary>Writes <paramref name="value"/> in one write(2) to an existing file (cgroupfs never creates files).</summary>
    FsResult WriteFile(string path, string value);

    /// <summary>Reads a whole file. Ok and its text, or another outcome and null.</summary>
    FsResult ReadFile(string path, out string? content);

    /// <summary>True when <paramref name="path"/> exists.</summary>
    bool Exists(string path);

    /// <summary>Names of the sub-directories of <paramref name="path"/>; empty when it does not exist.</summary>
    IReadOnlyList<string> ListDirectories(string path);

    /// <summary>
    /// cgroup v2 devices: loads the BPF_PROG_TYPE_CGROUP_DEVICE <paramref name="program"/> (once per program) and
    /// attaches it to <paramref name="dir"/> (bpf(2), BPF_F_ALLOW_MULTI). Denied without CAP_SYS_ADMIN (rootless).
    /// </summary>
    FsResult AttachDeviceFilter(string dir, byte[] program);

    /// <summary>
    /// flock(2) on a group's directory, without waiting: Ok and the hold (dispose to drop it), Busy when another
    /// holder's lock conflicts (any hold for an exclusive one, an exclusive one for a shared one), NotFound. The
    /// kernel drops a hold when its process dies, even by kill -9: how a sweep tells a live engine's groups.
    /// </summary>
    FsResult LockDirectory(string path, bool exclusive, out IDisposable? held);

    /// <summary>SIGKILL to <paramref name="pid"/>. Ok, or NoSuchProcess when it is gone.</summary>
    FsResult Kill(int pid);

    /// <summary>Waits a little before retrying an operation the kernel finishes asynchronously (dying tasks).</summary>
    void Pause(TimeSpan delay);
}
