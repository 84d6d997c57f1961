using System.Runtime.InteropServices;

namespace IsoTest.Engine.Native;

internal static partial class Interop
{
    /// <summary>The filesystem magic numbers the cgroup detection tells apart (linux/magic.h).</summary>
    internal const long Cgroup2SuperMagic = 0x63677270;
    internal const long CgroupSuperMagic = 0x27e0eb;
    internal const long TmpfsMagic = 0x01021994;

    /// <summary>
    /// statfs(2) reduced to the one field callers need: <c>f_type</c>. Returns 0 or the errno.
    /// Tmds.LibC only exposes statvfs, which has no filesystem type.
    /// </summary>
    internal static unsafe int GetFileSystemType(string path, out long fsType)
    {
        // struct statfs is 120 bytes on x86_64/arm64 and smaller elsewhere; f_type is its first word on every
        // Linux ABI (a long, __fsword_t), so a generous buffer and one nint read is all that is needed.
        byte* buffer = stackalloc byte[512];
        if (statfs(path, buffer) != 0)
        {
            fsType = 0;
            return Marshal.GetLastPInvokeError();
        }

        // f_type is unsigned on the kernel side; on 32-bit ABIs CGROUP2_SUPER_MAGIC still fits in a positive int.
        fsType = (long)(nuint)(*(nint*)buffer);
        return 0;
    }

    [LibraryImport("libc", EntryPoint = "statfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statfs(string path, byte* buffer);
}
