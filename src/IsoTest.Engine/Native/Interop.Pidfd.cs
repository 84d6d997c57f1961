using System.Runtime.InteropServices;

namespace IsoTest.Engine.Native;

/// <summary>pidfd_open(2) and pidfd_send_signal(2): glibc 2.36 has wrappers, older ones do not, so through syscall(2).</summary>
internal static partial class Libc
{
    // The same numbers on x86_64 and arm64 (both from the unified table, Linux 5.1 and 5.3).
    public const long SYS_pidfd_send_signal = 424;
    public const long SYS_pidfd_open = 434;

    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial long syscall_pidfd_open(long number, int pid, uint flags);

    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial long syscall_pidfd_send_signal(long number, int pidfd, int sig, nint info, uint flags);
}
