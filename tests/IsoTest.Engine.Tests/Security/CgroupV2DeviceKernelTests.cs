using System.Diagnostics;
using IsoTest.Engine.Native;
using IsoTest.Engine.Security;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// The cgroup v2 device program loaded and attached by the real kernel (bpf(2) through Native/CgroupFileSystem, as
/// the v2 driver does) to a scratch cgroup2 group, with a root shell inside trying the nodes. On a v2 host the group
/// is under /sys/fs/cgroup; on this hybrid machine under /sys/fs/cgroup/unified: the kernel runs cgroup-device
/// programs of the unified hierarchy for every task in it, next to the v1 devices controller. Needs root.
/// </summary>
public sealed class CgroupV2DeviceKernelTests : IDisposable
{
    private readonly string? _group;

    public CgroupV2DeviceKernelTests()
    {
        if (Cgroup2FactAttribute.Root is { } root && Environment.IsPrivilegedProcess)
        {
            _group = Path.Combine(root, "isotest-devtest-" + Guid.NewGuid().ToString("N")[..10]);
            Directory.CreateDirectory(_group);
        }
    }

    public void Dispose()
    {
        if (_group is not null && Directory.Exists(_group))
        {
            Directory.Delete(_group); // rmdir: the shell has exited, the program goes with the group
        }
    }

    [Cgroup2Fact]
    public void DockerDefaultProgram_InTheKernel_DeniesHostDisks_AllowsNull()
    {
        var program = CgroupDeviceProgram.Build(DeviceRules.DockerDefault);
        var attach = CgroupFileSystem.Instance.AttachDeviceFilter(_group!, program);
        Assert.True(attach.IsOk, $"attach to {_group}: {attach.Text}");

        var dir = Directory.CreateTempSubdirectory("isotest-devtest-").FullName;
        try
        {
            var script = $"echo $$ > {_group}/cgroup.procs || exit 99; "
                + $"mknod {dir}/loop b 7 0 && echo made; (exec 3<>{dir}/loop) 2>/dev/null && echo OPENED-BLOCK; "
                + $"mknod {dir}/mem c 1 1 && echo made; (exec 3<{dir}/mem) 2>/dev/null && echo OPENED-MEM; "
                + "echo x > /dev/null && echo null-ok; head -c 4 /dev/urandom | wc -c";
            var psi = new ProcessStartInfo("/bin/sh", ["-c", script]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = System.Diagnostics.Process.Start(psi)!;
            var output = process.StandardOutput.ReadToEnd();
            var error = process.StandardError.ReadToEnd();
            Assert.True(process.WaitForExit(10_000));

            Assert.True(process.ExitCode == 0, error);
            Assert.Equal("made\nmade\nnull-ok\n4\n", output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

/// <summary>Root and a cgroup2 hierarchy (/sys/fs/cgroup on v2, /sys/fs/cgroup/unified on hybrid); skipped, saying which is missing.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class Cgroup2FactAttribute : FactAttribute
{
    public Cgroup2FactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "Needs root: bpf(2) loads and attaches the device program with CAP_SYS_ADMIN.";
        }
        else if (Root is null)
        {
            Skip = "Needs a cgroup2 hierarchy (/sys/fs/cgroup or /sys/fs/cgroup/unified).";
        }
    }

    public static string? Root =>
        File.Exists("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup"
        : File.Exists("/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified" : null;
}
