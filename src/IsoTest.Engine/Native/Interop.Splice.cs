using System.Runtime.InteropServices;

namespace IsoTest.Engine.Native;

/// <summary>pipe2(2), splice(2) and the fcntl(2) commands the published-port relay (<see cref="SplicePump"/>) needs.</summary>
internal static unsafe partial class Libc
{
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
    public const int F_SETPIPE_SZ = 1031;
    public const uint SPLICE_F_MOVE = 1;
    public const int EPIPE = 32;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int pipe2(int* fds, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint splice(SafeHandle fdIn, long* offIn, SafeHandle fdOut, long* offOut, nuint len, uint flags);

    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int fcntl(SafeHandle fd, int cmd, int arg);
}
