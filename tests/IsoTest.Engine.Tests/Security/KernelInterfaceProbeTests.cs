using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// Probes of the kernel's own interfaces from inside a real container (root and rootless): nothing under /proc/sys,
/// /proc/sysrq-trigger or /sys can be written, Docker's masked paths read as empty, PID 1 cannot be traced, and
/// neither /proc/1/root nor a descriptor under /proc/*/fd leads out of the container.
/// </summary>
public sealed class KernelInterfaceProbeTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private const string Python = "/usr/bin/python3";
    private readonly EngineBackend _engine = fixture.Engine;

    [Theory]
    [InlineData("/proc/sys/kernel/core_pattern")]
    [InlineData("/proc/sys/vm/drop_caches")]
    [InlineData("/proc/sys/kernel/panic")]
    [InlineData("/proc/sys/net/ipv4/ip_forward")]
    [InlineData("/proc/sysrq-trigger")]
    [InlineData("/sys/kernel/mm/transparent_hugepage/enabled")]
    [InlineData("/sys/class/net/lo/mtu")]
    [InlineData("/sys/fs/cgroup/cgroup.procs")]
    public async Task KernelSettings_CannotBeWritten(string path)
    {
        // sysrq-trigger: writing "h" only logs help to the kernel log, so even a hole would do no harm here.
        var value = path.EndsWith("sysrq-trigger", StringComparison.Ordinal) ? "h" : "0";
        var result = await _engine.RunAsync(Specs.Shell($"if [ -e {path} ]; then (echo {value} > {path}) 2>/dev/null && echo WRITTEN || echo denied; else echo absent; fi"));

        Assert.Equal(0, result.ExitCode);
        Assert.True(result.Stdout is "denied\n" or "absent\n", $"{path}: {result.Stdout}");
    }

    [Theory]
    [InlineData("/proc/kcore")]
    [InlineData("/proc/keys")]
    [InlineData("/proc/timer_list")]
    [InlineData("/proc/sched_debug")]
    [InlineData("/proc/latency_stats")]
    [InlineData("/proc/interrupts")]
    [InlineData("/proc/acpi")]
    [InlineData("/proc/scsi")]
    [InlineData("/proc/asound")]
    [InlineData("/sys/firmware")]
    [InlineData("/sys/devices/virtual/powercap")]
    public async Task MaskedPath_RevealsNothing(string path)
    {
        // Files are masked with an empty node, directories with an empty read-only tmpfs (Docker's maskedPaths).
        // Where this kernel has no such path, the container must not have it either (nothing to mask, nothing leaks).
        var onHost = File.Exists(path) || Directory.Exists(path);
        var result = await _engine.RunAsync(Specs.Shell(
            $"if [ -d {path} ]; then echo dir $(ls -A {path} 2>/dev/null | wc -l); elif [ -e {path} ]; then echo file $(head -c 64 {path} 2>/dev/null | wc -c); else echo absent; fi"));

        Assert.Equal(0, result.ExitCode);
        if (!onHost)
        {
            Assert.Equal("absent\n", result.Stdout);
            return;
        }

        Assert.True(result.Stdout is "dir 0\n" or "file 0\n", $"{path} is readable inside the container: {result.Stdout}");
    }

    [Fact]
    public async Task Ptrace_OfPidOne_IsDenied()
    {
        // PTRACE_ATTACH (16) and PTRACE_SEIZE (0x4206) of init, and reading its memory.
        var result = await _engine.RunAsync(Specs.Host(Python, "-c", """
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            for req in (16, 0x4206):
                r = libc.ptrace(ctypes.c_long(req), ctypes.c_long(1), None, None)
                print("attached" if r == 0 else os.strerror(ctypes.get_errno()))
            try:
                open("/proc/1/mem", "rb").read(1); print("mem read")
            except OSError as e:
                print(e.strerror)
            """));

        Assert.Equal(0, result.ExitCode);
        Assert.DoesNotContain("attached", result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("mem read", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProcOneRoot_IsTheContainersRoot_NotTheHosts()
    {
        // A host file outside what the container sees (the container has its own /tmp).
        var secret = Path.Combine(Path.GetTempPath(), "isotest-probe-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(secret, "host secret");
        try
        {
            var result = await _engine.RunAsync(Specs.Shell(
                $"cat /proc/1/root{secret} /proc/self/root{secret} /proc/2/root{secret} {secret} 2>/dev/null; " +
                // PID 1's root is either not reachable at all (init is more privileged: ptrace read access is refused)
                // or the container's own root.
                "r=$(stat -c %d:%i /proc/1/root/ 2>/dev/null) || r=denied; " +
                "if [ \"$r\" = denied ]; then echo denied; elif [ \"$r\" = \"$(stat -c %d:%i /)\" ]; then echo same-root; else echo OTHER-ROOT; fi; echo done"));

            Assert.Equal(0, result.ExitCode);
            Assert.True(result.Stdout is "same-root\ndone\n" or "denied\ndone\n", result.Stdout);
        }
        finally
        {
            File.Delete(secret);
        }
    }

    [Fact]
    public async Task ProcFd_NoDescriptorOfAnyProcessInside_LeadsToAHostDirectory()
    {
        // The runc CVE-2024-21626 shape: a directory fd left open by init (the old root, a host source) would let the
        // payload chdir through /proc/1/fd/N to the host. Every fd of every process inside must be no directory.
        var result = await _engine.RunAsync(Specs.Shell(
            "for f in /proc/[0-9]*/fd/*; do [ -d \"$f\" ] && echo \"DIR $f -> $(readlink $f)\"; done; ls /proc/1/fd >/dev/null 2>&1 && echo listed || echo hidden; echo done"));

        Assert.Equal(0, result.ExitCode);
        Assert.DoesNotContain("DIR ", result.Stdout, StringComparison.Ordinal);
        Assert.EndsWith("done\n", result.Stdout, StringComparison.Ordinal);
    }
}
