namespace IsoTest.Engine.Native;

/// <summary>Who the engine runs as.</summary>
internal static class Credentials
{
    public static uint EffectiveUid => Libc.geteuid();

    public static uint EffectiveGid => Libc.getegid();

    /// <summary>Root: the engine may use namespaces and cgroups directly; otherwise rootless (a user namespace per container).</summary>
    public static bool IsRoot => EffectiveUid == 0;
}
