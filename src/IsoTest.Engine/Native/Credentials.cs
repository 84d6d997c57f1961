using System.Runtime.InteropServices;

namespace IsoTest.Engine.Native;

/// <summary>Who the engine runs as.</summary>
internal static class Credentials
{
    public static uint EffectiveUid => Libc.geteuid();

    public static uint EffectiveGid => Libc.getegid();

    /// <summary>The supplementary groups of this process (getgroups(2)).</summary>
    public static unsafe IReadOnlySet<uint> Groups()
    {
        var count = Libc.getgroups(0, null);
        var groups = new uint[Math.Max(count, 0)];
        fixed (uint* list = groups)
        {
            count = groups.Length == 0 ? 0 : Libc.getgroups(groups.Length, list);
        }

        return count < 0 ? throw Errors.Native("getgroups", Marshal.GetLastPInvokeError()) : groups.Take(count).ToHashSet();
    }

    /// <summary>Root: the engine may use namespaces and cgroups directly; otherwise rootless (a user namespace per container).</summary>
    public static bool IsRoot => EffectiveUid == 0;
}
