namespace IsoTest.Engine.Cgroups;

/// <summary>The outcomes of a cgroupfs call that the drivers act on differently.</summary>
internal enum FsOutcome
{
    Ok,
    Exists,
    NotFound,
    Busy,
    Denied,
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
