using System.Runtime.InteropServices;

namespace IsoTest.Engine.Native;

/// <summary>
/// bpf(2) for the cgroup v2 device filter: BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program and
/// BPF_PROG_ATTACH of it to a cgroup directory. glibc has no wrapper, so through syscall(2).
/// </summary>
internal static unsafe partial class Bpf
{
    private const int BpfProgLoad = 5;
    private const int BpfProgAttach = 8;
    private const uint ProgTypeCgroupDevice = 15;  // BPF_PROG_TYPE_CGROUP_DEVICE
    private const uint AttachTypeCgroupDevice = 6;     // BPF_CGROUP_DEVICE
    private const uint FlagAllowMulti = 2;         // BPF_F_ALLOW_MULTI: every program up the tree runs, all must allow
    private static readonly int OpenDirectory = Libc.O_DIRECTORY | Libc.O_CLOEXEC; // O_RDONLY

    // union bpf_attr is larger than any field we set; the kernel takes a short size when the tail is zero.
    private const int AttrSize = 128;

    private static long SysBpf => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 280 : 321;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long cmd, void* attr, long size);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    /// <summary>Loads a cgroup-device program; returns its fd, or -errno. <paramref name="log"/> gets the verifier's words on failure.</summary>
    public static int LoadCgroupDeviceProgram(ReadOnlySpan<byte> instructions, out string log)
    {
        var attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        var license = "Apache-2.0\0"u8;
        var logBuffer = new byte[16 * 1024];
        fixed (byte* insns = instructions)
        fixed (byte* lic = license)
        fixed (byte* logBuf = logBuffer)
        {
            *(uint*)(attr + 0) = ProgTypeCgroupDevice;
            *(uint*)(attr + 4) = (uint)(instructions.Length / 8);
            *(ulong*)(attr + 8) = (ulong)insns;
            *(ulong*)(attr + 16) = (ulong)lic;
            *(uint*)(attr + 24) = 1;                         // log_level: words only when it fails
            *(uint*)(attr + 28) = (uint)logBuffer.Length;
            *(ulong*)(attr + 32) = (ulong)logBuf;
            "isotest_dev\0"u8.CopyTo(new Span<byte>(attr + 48, 16)); // prog_name
            var fd = Syscall(SysBpf, BpfProgLoad, attr, AttrSize);
            var error = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
            log = fd < 0 ? System.Text.Encoding.UTF8.GetString(logBuffer).TrimEnd('\0').Trim() : "";
            return fd < 0 ? -error : (int)fd;
        }
    }

    /// <summary>Attaches program <paramref name="programFd"/> to the cgroup at <paramref name="cgroupDir"/>; 0 or an errno.</summary>
    public static int AttachCgroupDevice(string cgroupDir, int programFd)
    {
        var dirFd = Open(cgroupDir, OpenDirectory);
        if (dirFd < 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        try
        {
            var attr = stackalloc byte[AttrSize];
            new Span<byte>(attr, AttrSize).Clear();
            *(uint*)(attr + 0) = (uint)dirFd;          // target_fd
            *(uint*)(attr + 4) = (uint)programFd;      // attach_bpf_fd
            *(uint*)(attr + 8) = AttachTypeCgroupDevice;   // attach_type
            *(uint*)(attr + 12) = FlagAllowMulti;      // attach_flags
            return Syscall(SysBpf, BpfProgAttach, attr, AttrSize) < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
        finally
        {
            Close(dirFd);
        }
    }

    /// <summary>Closes a program fd (the attachment keeps the program alive).</summary>
    public static void CloseProgram(int fd) => Close(fd);
}
