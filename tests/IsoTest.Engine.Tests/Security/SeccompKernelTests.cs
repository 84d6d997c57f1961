using System.Diagnostics;
using IsoTest.Engine.Security;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// The compiled default filter installed by the real kernel (in a python3 child: seccomp(2) is irreversible, so
/// never in the test process), with syscalls made through it. Proves the bytes are a program the kernel accepts
/// and that it denies with the errnos the profile says. Root and rootless: installing needs only no_new_privs.
/// </summary>
public sealed class SeccompKernelTests
{
    private const string Script = """
        import ctypes, sys
        libc = ctypes.CDLL(None, use_errno=True)
        data = open(sys.argv[1], 'rb').read()
        class Prog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
        buf = ctypes.create_string_buffer(data, len(data))
        prog = Prog(len(data) // 8, ctypes.cast(buf, ctypes.c_void_p))
        if libc.prctl(38, 1, 0, 0, 0) != 0:            # PR_SET_NO_NEW_PRIVS
            print("nnp", ctypes.get_errno()); sys.exit(2)
        if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
            print("install", ctypes.get_errno()); sys.exit(3)
        for spec in sys.argv[2:]:
            name, *nums = spec.split(':')
            ctypes.set_errno(0)
            r = libc.syscall(*[ctypes.c_long(int(n)) for n in nums])
            print(name, ctypes.get_errno() if r == -1 else 0, flush=True)
        """;

    [Fact]
    public void DefaultFilter_OnTheRealKernel_DeniesAndAllowsAsDockerDoes()
    {
        var program = SeccompFilters.For(SeccompProfile.Default)!;
        var x = SyscallTable.Native!.Value;
        string Call(string label, string name, params long[] args) =>
            $"{label}:{SyscallTable.Number(x, name)}" + string.Concat(args.Select(a => ":" + a));

        var output = RunFiltered(program.Filter,
            Call("getpid", "getpid"),
            Call("keyctl", "keyctl", 0, -3, 0),                // KEYCTL_GET_KEYRING_ID of the session keyring
            Call("add_key", "add_key", 0, 0, 0, 0, 0),
            Call("clone3", "clone3", 0, 0),                     // ENOSYS: libc falls back to clone
            Call("unshare", "unshare", 0x10000000),             // CLONE_NEWUSER
            Call("io_uring_setup", "io_uring_setup", 1, 0),
            Call("userfaultfd", "userfaultfd", 0),
            Call("perf_event_open", "perf_event_open", 0, 0, -1, -1, 0),
            Call("bpf", "bpf", 0, 0, 0),
            Call("kexec_load", "kexec_load", 0, 0, 0, 0),
            Call("init_module", "init_module", 0, 0, 0),
            Call("mount", "mount", 0, 0, 0, 0, 0),
            Call("personality", "personality", 0xFFFFFFFF),     // query: allowed
            Call("personality_bad", "personality", 0x0040000),  // ADDR_NO_RANDOMIZE: denied
            Call("socket_vsock", "socket", 40, 1, 0));

        Assert.Equal(
            """
            getpid 0
            keyctl 1
            add_key 1
            clone3 38
            unshare 1
            io_uring_setup 1
            userfaultfd 1
            perf_event_open 1
            bpf 1
            kexec_load 1
            init_module 1
            mount 1
            personality 0
            personality_bad 1
            socket_vsock 1

            """.ReplaceLineEndings("\n"),
            output);
    }

    [Fact]
    public void ForeignArchFilter_KillsTheProcess()
    {
        // A filter compiled for the other architecture kills at the first syscall: the audit-arch check works.
        var other = SyscallTable.Native == SeccompArch.X86_64 ? SeccompArch.Aarch64 : SeccompArch.X86_64;
        var program = SeccompCompiler.Compile(SeccompFilters.Default, other, SeccompCompiler.DockerDefaultCapabilities, SeccompCompiler.RunningKernel());

        var (exit, output) = Run(program.Filter, "getpid:39");

        Assert.Equal(-31, exit); // SIGSYS
        Assert.Equal("", output);
    }

    private static string RunFiltered(byte[] filter, params string[] calls)
    {
        var (exit, output) = Run(filter, calls);
        Assert.True(exit == 0, $"python3 exited {exit}: {output}");
        return output;
    }

    private static (int Exit, string Output) Run(byte[] filter, params string[] calls)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(file, filter);
            var psi = new ProcessStartInfo("python3", ["-c", Script, file, .. calls]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = System.Diagnostics.Process.Start(psi)!;
            var output = process.StandardOutput.ReadToEnd();
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();

            // .NET reports a signalled child as 128 + signo; say -signo so SIGSYS reads as itself.
            var exit = process.ExitCode > 128 ? -(process.ExitCode - 128) : process.ExitCode;
            return (exit, output + error);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
