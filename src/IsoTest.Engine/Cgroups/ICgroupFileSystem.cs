namespace IsoTest.Engine.Cgroups;

/// <summary>
/// The kernel calls a cgroup driver makes, behind one seam so the v2 driver can be tested against a fake
/// tree on a machine that runs v1 (youki's libcgroups does the same). Results are 0 or an errno, because
/// the drivers turn specific errnos (EACCES, EINVAL, EBUSY, ENOENT) into specific messages.
/// </summary>
internal interface ICgroupFileSystem
{
    /// <summary>mkdir(2). 0, or EEXIST when it exists, or another errno.</summary>
    int CreateDirectory(string path);

    /// <summary>rmdir(2). 0, or ENOENT when already gone, EBUSY while processes or children remain.</summary>
    int RemoveDirectory(string path);

    /// <summary>Writes <paramref name="value"/> in one write(2) to an existing file (cgroupfs never creates files).</summary>
    int WriteFile(string path, string value);

    /// <summary>Reads a whole file. 0 and its text, or an errno and null.</summary>
    int ReadFile(string path, out string? content);

    /// <summary>True when <paramref name="path"/> exists.</summary>
    bool Exists(string path);

    /// <summary>Names of the sub-directories of <paramref name="path"/>; empty when it does not exist.</summary>
    IReadOnlyList<string> ListDirectories(string path);

    /// <summary>SIGKILL to <paramref name="pid"/>. 0, or ESRCH when it is gone.</summary>
    int Kill(int pid);

    /// <summary>Waits a little before retrying an operation the kernel finishes asynchronously (dying tasks).</summary>
    void Pause(TimeSpan delay);
}
