using IsoTest.Engine.Security;
using IsoTest.Seccomp;
using static IsoTest.Engine.Security.SeccompCompiler;

namespace IsoTest.Engine.Tests.Security;

/// <summary>The compiled default profile, run through a cBPF interpreter: Docker's policy, syscall by syscall.</summary>
public sealed class SeccompCompilerTests
{
    private const uint Eperm = RetErrno | 1;
    private const uint Enosys = RetErrno | 38;
    private const ulong CloneNewUser = 0x10000000;
    private const ulong CloneNewNs = 0x00020000;
    private const ulong CloneThreadFlags = 0x003D0F00; // what glibc's pthread_create passes: VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID

    private static readonly Version Kernel = new(6, 1);

    private static byte[] X86(IReadOnlySet<string>? caps = null, Version? kernel = null) =>
        Compile(SeccompFilters.Default, SeccompArch.X86_64, caps ?? DockerDefaultCapabilities, kernel ?? Kernel).Filter;

    private static uint OnX86(byte[] filter, string name, params ulong[] args) =>
        ClassicBpfInterpreter.Run(filter, SyscallTable.Number(SeccompArch.X86_64, name) ?? throw new ArgumentException(name), SyscallTable.AuditArchX86_64, args);

    private static uint OnAarch64(byte[] filter, string name, params ulong[] args) =>
        ClassicBpfInterpreter.Run(filter, SyscallTable.Number(SeccompArch.Aarch64, name) ?? throw new ArgumentException(name), SyscallTable.AuditArchAarch64, args);

    [Theory]
    [InlineData("read")]
    [InlineData("write")]
    [InlineData("execve")]
    [InlineData("mmap")]
    [InlineData("futex")]
    [InlineData("exit_group")]
    [InlineData("chown")]
    [InlineData("mknodat")]
    [InlineData("chroot")] // CAP_SYS_CHROOT is in Docker's default set
    [InlineData("ptrace")] // allowed from kernel 4.8
    [InlineData("rseq")]
    [InlineData("arch_prctl")]
    [InlineData("modify_ldt")]
    public void DefaultProfile_AllowsWhatProgramsNeed(string name) => Assert.Equal(RetAllow, OnX86(X86(), name));

    [Theory]
    [InlineData("keyctl")]
    [InlineData("add_key")]
    [InlineData("request_key")]
    [InlineData("perf_event_open")]
    [InlineData("userfaultfd")]
    [InlineData("io_uring_setup")]
    [InlineData("bpf")]
    [InlineData("kexec_load")]
    [InlineData("init_module")]
    [InlineData("finit_module")]
    [InlineData("mount")]
    [InlineData("umount2")]
    [InlineData("unshare")]
    [InlineData("setns")]
    [InlineData("pivot_root")]
    [InlineData("open_by_handle_at")]
    [InlineData("reboot")]
    [InlineData("swapon")]
    [InlineData("settimeofday")]
    [InlineData("fsopen")]
    [InlineData("syslog")]
    public void DefaultProfile_DeniesWithEperm(string name) => Assert.Equal(Eperm, OnX86(X86(), name));

    [Fact]
    public void Clone_WithoutNamespaceFlags_Allowed_WithAny_Denied()
    {
        var filter = X86();

        Assert.Equal(RetAllow, OnX86(filter, "clone", CloneThreadFlags));
        Assert.Equal(RetAllow, OnX86(filter, "clone", 17)); // fork(): SIGCHLD
        Assert.Equal(Eperm, OnX86(filter, "clone", CloneNewUser | 17));
        Assert.Equal(Eperm, OnX86(filter, "clone", CloneNewNs));
        Assert.Equal(Eperm, OnX86(filter, "clone", 0x40000000)); // CLONE_NEWNET
    }

    [Fact]
    public void Clone3_IsEnosys_SoLibcFallsBackToClone()
    {
        Assert.Equal(Enosys, OnX86(X86(), "clone3"));
    }

    [Fact]
    public void CapSysAdmin_OpensTheGatedGroup()
    {
        var caps = new HashSet<string>(DockerDefaultCapabilities) { "CAP_SYS_ADMIN" };
        var filter = X86(caps);

        Assert.Equal(RetAllow, OnX86(filter, "mount"));
        Assert.Equal(RetAllow, OnX86(filter, "unshare"));
        Assert.Equal(RetAllow, OnX86(filter, "clone", CloneNewUser));
        Assert.Equal(RetAllow, OnX86(filter, "clone3"));
        Assert.Equal(Eperm, OnX86(filter, "kexec_load"));
    }

    [Fact]
    public void MinKernel_PtraceDeniedBefore48()
    {
        Assert.Equal(Eperm, OnX86(X86(kernel: new Version(4, 4)), "ptrace"));
        Assert.Equal(RetAllow, OnX86(X86(kernel: new Version(4, 8)), "ptrace"));
    }

    [Theory]
    [InlineData(0x0UL, RetAllow)]          // PER_LINUX
    [InlineData(0x8UL, RetAllow)]          // PER_LINUX32
    [InlineData(0x20000UL, RetAllow)]      // UNAME26
    [InlineData(0x20008UL, RetAllow)]
    [InlineData(0xFFFFFFFFUL, RetAllow)]   // query
    [InlineData(0x0040000UL, Eperm)]       // ADDR_NO_RANDOMIZE
    [InlineData(0x1_0000_0000UL, Eperm)]   // high word set: both halves are compared
    [InlineData(0xFFFF_FFFF_FFFF_FFFFUL, Eperm)]
    public void Personality_OnlyDockersValues(ulong persona, uint expected) => Assert.Equal(expected, OnX86(X86(), "personality", persona));

    [Theory]
    [InlineData(1UL, RetAllow)]   // AF_UNIX
    [InlineData(2UL, RetAllow)]   // AF_INET
    [InlineData(37UL, RetAllow)]
    [InlineData(38UL, Eperm)]     // AF_ALG
    [InlineData(39UL, RetAllow)]  // AF_NFC
    [InlineData(40UL, Eperm)]     // AF_VSOCK
    [InlineData(41UL, RetAllow)]
    public void Socket_FamilyRules(ulong family, uint expected) => Assert.Equal(expected, OnX86(X86(), "socket", family, 1, 0));

    [Fact]
    public void ForeignArchitecture_IsKilled()
    {
        var filter = X86();

        Assert.Equal(RetKillProcess, ClassicBpfInterpreter.Run(filter, 63, SyscallTable.AuditArchAarch64));
        Assert.Equal(RetKillProcess, ClassicBpfInterpreter.Run(filter, 0, 0x40000028)); // AUDIT_ARCH_ARM
    }

    [Fact]
    public void SubArchitectures_I386AndX32_UseTheirOwnNumbers()
    {
        var filter = X86();
        uint I386(string name, params ulong[] args) =>
            ClassicBpfInterpreter.Run(filter, SyscallTable.Number(SeccompArch.I386, name)!.Value, SyscallTable.AuditArchI386, args);
        uint X32(string name) =>
            ClassicBpfInterpreter.Run(filter, SyscallTable.Number(SeccompArch.X32, name)!.Value, SyscallTable.AuditArchX86_64);

        Assert.Equal(RetAllow, I386("read"));
        Assert.Equal(RetAllow, I386("socketcall"));
        Assert.Equal(Eperm, I386("keyctl"));
        Assert.Equal(Eperm, I386("clone", CloneNewUser));
        Assert.Equal(RetAllow, X32("read"));
        Assert.Equal(Eperm, X32("keyctl"));
        Assert.Equal(Eperm, X32("mount"));

        // i386's number 288 is keyctl; on x86_64 it is accept4: the arch decides which table applies.
        Assert.Equal(RetAllow, OnX86(filter, "accept4"));
        Assert.Equal(288, SyscallTable.Number(SeccompArch.X86_64, "accept4"));
    }

    [Fact]
    public void X32_KilledWhenTheProfileLeavesItOut()
    {
        var json = """{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}""";
        var filter = Compile(Parse(json), SeccompArch.X86_64, DockerDefaultCapabilities, Kernel).Filter;

        Assert.Equal(RetAllow, OnX86(filter, "read"));
        Assert.Equal(RetKillProcess, ClassicBpfInterpreter.Run(filter, (int)SyscallTable.X32SyscallBit, SyscallTable.AuditArchX86_64));
        Assert.Equal(RetKillProcess, ClassicBpfInterpreter.Run(filter, 3, SyscallTable.AuditArchI386));
    }

    [Fact]
    public void Aarch64_DefaultProfile()
    {
        var filter = Compile(SeccompFilters.Default, SeccompArch.Aarch64, DockerDefaultCapabilities, Kernel).Filter;

        Assert.Equal(RetAllow, OnAarch64(filter, "read"));
        Assert.Equal(RetAllow, OnAarch64(filter, "openat"));
        Assert.Equal(RetAllow, OnAarch64(filter, "clone", 17));
        Assert.Equal(Eperm, OnAarch64(filter, "clone", CloneNewUser));
        Assert.Equal(Enosys, OnAarch64(filter, "clone3"));
        Assert.Equal(Eperm, OnAarch64(filter, "keyctl"));
        Assert.Equal(Eperm, OnAarch64(filter, "io_uring_setup"));
        Assert.Equal(RetAllow, OnAarch64(filter, "personality", 8));
        Assert.Equal(RetKillProcess, ClassicBpfInterpreter.Run(filter, 0, SyscallTable.AuditArchX86_64));
        Assert.Equal(Eperm, ClassicBpfInterpreter.Run(filter, 5000, SyscallTable.AuditArchAarch64)); // no such syscall: default
    }

    [Fact]
    public void EveryNumber_GetsTheActionItsRulesSay()
    {
        // Every syscall of the table, both architectures: allowed iff the selected rules allow it unconditionally.
        foreach (var arch in (SeccompArch[])[SeccompArch.X86_64, SeccompArch.Aarch64])
        {
            var program = Compile(SeccompFilters.Default, arch, DockerDefaultCapabilities, Kernel);
            var rules = Select(SeccompFilters.Default, arch, DockerDefaultCapabilities, Kernel);
            var audit = arch == SeccompArch.X86_64 ? SyscallTable.AuditArchX86_64 : SyscallTable.AuditArchAarch64;
            foreach (var (name, number) in SyscallTable.All(arch))
            {
                var plain = rules.FirstOrDefault(r => r.Args.Count == 0 && r.Names.Contains(name));
                if (rules.Any(r => r.Args.Count > 0 && r.Names.Contains(name)))
                {
                    continue; // argument rules: checked above
                }

                var expected = plain is null ? Eperm : Encode(plain.Action);
                Assert.True(expected == ClassicBpfInterpreter.Run(program.Filter, number, audit), $"{arch} {name} ({number})");
            }
        }
    }

    [Fact]
    public void Comparisons_MatchTheirDefinitionAcrossTheWordBoundary()
    {
        ulong[] values = [0, 1, 0xFFFF_FFFF, 0x1_0000_0000, 0x1_0000_0001, 0xFFFF_FFFF_0000_0000, 0xFFFF_FFFF_FFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 42];
        var ops = new (string Op, Func<ulong, ulong, bool> Holds)[]
        {
            ("SCMP_CMP_EQ", (a, v) => a == v), ("SCMP_CMP_NE", (a, v) => a != v), ("SCMP_CMP_LT", (a, v) => a < v),
            ("SCMP_CMP_LE", (a, v) => a <= v), ("SCMP_CMP_GT", (a, v) => a > v), ("SCMP_CMP_GE", (a, v) => a >= v),
        };
        var checks = 0;
        foreach (var (op, holds) in ops)
        {
            foreach (var value in values)
            {
                var json = $$"""{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":{{value}},"op":"{{op}}"}]}]}""";
                var filter = Compile(Parse(json), SeccompArch.X86_64, DockerDefaultCapabilities, Kernel).Filter;
                foreach (var arg in values)
                {
                    var expected = holds(arg, value) ? RetAllow : Eperm;
                    Assert.True(expected == OnX86(filter, "ioctl", 0, 0, arg), $"{arg:x} {op} {value:x}");
                    checks++;
                }
            }
        }

        // (arg & mask) == valueTwo
        foreach (var mask in values)
        {
            foreach (var want in values)
            {
                var json = $$"""{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":{{mask}},"valueTwo":{{want}},"op":"SCMP_CMP_MASKED_EQ"}]}]}""";
                var filter = Compile(Parse(json), SeccompArch.X86_64, DockerDefaultCapabilities, Kernel).Filter;
                foreach (var arg in values)
                {
                    Assert.True(((arg & mask) == want ? RetAllow : Eperm) == OnX86(filter, "ioctl", 0, arg), $"({arg:x} & {mask:x}) == {want:x}");
                    checks++;
                }
            }
        }

        Assert.Equal((6 * 10 * 10) + (10 * 10 * 10), checks);
    }

    [Fact]
    public void ArgumentRules_AllMustHold_FirstMatchingRuleWins_ThenTheUnconditionalOne()
    {
        var json = """
            {"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[
              {"names":["fcntl"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"args":[{"index":0,"value":3,"op":"SCMP_CMP_EQ"},{"index":1,"value":4,"op":"SCMP_CMP_EQ"}]},
              {"names":["fcntl"],"action":"SCMP_ACT_LOG","args":[{"index":0,"value":3,"op":"SCMP_CMP_EQ"}]},
              {"names":["fcntl"],"action":"SCMP_ACT_ALLOW"},
              {"names":["ioctl"],"action":"SCMP_ACT_TRACE","errnoRet":7},
              {"names":["read"],"action":"SCMP_ACT_TRAP"},
              {"name":"write","action":"SCMP_ACT_KILL"}]}
            """;
        var filter = Compile(Parse(json), SeccompArch.X86_64, DockerDefaultCapabilities, Kernel).Filter;

        Assert.Equal(RetErrno | 13, OnX86(filter, "fcntl", 3, 4));
        Assert.Equal(RetLog, OnX86(filter, "fcntl", 3, 5));
        Assert.Equal(RetAllow, OnX86(filter, "fcntl", 2, 4));
        Assert.Equal(RetTrace | 7, OnX86(filter, "ioctl"));
        Assert.Equal(RetTrap, OnX86(filter, "read"));
        Assert.Equal(RetKillThread, OnX86(filter, "write"));
        Assert.Equal(RetKillProcess, OnX86(filter, "getpid"));
    }

    [Fact]
    public void LongProfile_FarJumpsStillLandRight()
    {
        // One argument rule per syscall: bodies far past the 255 a conditional jump can reach.
        var names = SyscallTable.All(SeccompArch.X86_64).Keys.Order(StringComparer.Ordinal).Take(300).ToList();
        var rules = string.Join(',', names.Select((n, i) => $$"""{"names":["{{n}}"],"action":"SCMP_ACT_ERRNO","errnoRet":{{(i % 200) + 1}},"args":[{"index":0,"value":{{i}},"op":"SCMP_CMP_EQ"}]}"""));
        var program = Compile(Parse($$"""{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{rules}}]}"""), SeccompArch.X86_64, DockerDefaultCapabilities, Kernel);

        Assert.True(program.Length > 1000, $"{program.Length} instructions");
        for (var i = 0; i < names.Count; i++)
        {
            Assert.Equal(RetErrno | (uint)((i % 200) + 1), OnX86(program.Filter, names[i], (ulong)i));
            Assert.Equal(RetAllow, OnX86(program.Filter, names[i], (ulong)i + 1));
        }
    }

    [Fact]
    public void TooLongForTheKernel_IsAClearError()
    {
        var names = SyscallTable.All(SeccompArch.X86_64).Keys.Take(350).ToList();
        // Distinct values, so no two syscalls share a body.
        var rules = string.Join(',', names.Select((n, i) => $$"""{"names":["{{n}}"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":{{i}},"op":"SCMP_CMP_LT"},{"index":1,"value":2,"op":"SCMP_CMP_GT"},{"index":2,"value":3,"op":"SCMP_CMP_LE"}]}"""));

        var ex = Assert.Throws<InvalidOperationException>(() =>
            Compile(Parse($$"""{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{rules}}]}"""), SeccompArch.X86_64, DockerDefaultCapabilities, Kernel));
        Assert.Contains("at most 4096", ex.Message);
    }

    [Fact]
    public void UnknownNames_AreSkipped_AsRuncDoes()
    {
        var filter = Compile(Parse("""{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["no_such_call","read"],"action":"SCMP_ACT_ALLOW"}]}"""),
            SeccompArch.X86_64, DockerDefaultCapabilities, Kernel).Filter;

        Assert.Equal(RetAllow, OnX86(filter, "read"));
        Assert.Equal(Eperm, OnX86(filter, "write"));
    }

    [Fact]
    public void Cache_CompilesOncePerProfile()
    {
        var first = SeccompFilters.For(SeccompProfile.Default);
        var second = SeccompFilters.For(SeccompProfile.Default);

        Assert.NotNull(first);
        Assert.Same(first, second);
        Assert.Null(SeccompFilters.For(SeccompProfile.Unconfined));
        // x86_64, i386 and x32, each a decision tree over ranges of numbers: far fewer than one comparison per syscall and arch.
        Assert.Equal([SeccompArch.X86_64, SeccompArch.I386, SeccompArch.X32], first.Architectures);
        Assert.True(first.Length < 1000, $"{first.Length} instructions");
    }

    internal static SeccompDocument Parse(string json)
    {
        var errors = new List<string>();
        return SeccompDocument.Parse(json, "test", errors) ?? throw new InvalidOperationException(string.Join("\n", errors));
    }
}
