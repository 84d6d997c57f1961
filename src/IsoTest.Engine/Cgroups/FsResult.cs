namespace IsoTest.Engine.Cgroups;

/// <summary>The outcomes of a cgroupfs call that the drivers act on differently.</summary>
internal enum FsOutcome
{
    Ok,
    Exists,
    NotFound,
    Busy,
    /// <summary>EACCES or EROFS: the file or directory is not this user's to write.</summary>
    Denied,
    /// <summary>
    /// EPERM: refused for a reason beyond file permissions. On cgroup.subtree_control it means the kernel would not
    /// move a process with privileges the writer lacks (a setuid program such as newuidmap) into the new controller.
    /// </summary>
    NotPermitted,
    Invalid,
    NoSuchProcess,
    Other,
}

/// <summary>
/// What a cgroupfs call came to: the outcome the drivers branch on, and the kernel's own words for the
/// message (e.g. "Device or resource busy (EBUSY)"). Native/ makes them from errno; nothing here sees one.
/// </summary>
internal readonly record struct FsResult(FsOutcome Outcome, string Text)
{
    public static FsResult Ok { get; } = new(FsOutcome.Ok, "");

    public bool IsOk => Outcome == FsOutcome.Ok;

    public override string ToString() => Text;
}
