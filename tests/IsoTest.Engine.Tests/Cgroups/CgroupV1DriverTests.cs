using IsoTest.Engine.Native;
using System.Diagnostics;
using System.Runtime.InteropServices;
using IsoTest;
using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Tests.Cgroups.Fakes;
using Xunit;

namespace IsoTest.Engine.Tests.Cgroups;

/// <summary>
/// The v1 driver on the real kernel (this machine runs hybrid v1). Each test uses its own parent group so it
/// never meets another test's or a real engine's groups, and removes it in <see cref="Dispose"/> even on failure.
/// </summary>
public sealed class CgroupV1DriverTests : IDisposable
{
    private const string Root = "/sys/fs/cgroup";
    private static readonly string[] Controllers = ["memory", "cpu", "pids", "cpuset", "devices"];

    private readonly string _parent = "isotest-test-" + Guid.NewGuid().ToString("N")[..12];
    private readonly CgroupV1Driver _driver;
    private readonly List<System.Diagnostics.Process> _processes = [];

    public CgroupV1DriverTests()
    {
        _driver = new CgroupV1Driver(Root, _parent, CgroupFileSystem.Instance);
    }

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            try
            {
                process.Kill();
                process.WaitForExit();
            }
            catch (InvalidOperationException)
            {
            }

            process.Dispose();
        }

        foreach (var engine in _driver.ListEngineGroups())
        {
            _driver.RemoveEngineGroup(engine);
        }

        foreach (var controller in Controllers)
        {
            var dir = Path.Combine(Root, controller, _parent);
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir); // rmdir: cgroup dirs "contain" only their control files.
            }
        }
    }

    [RootFact]
    public void Create_AllCaps_KernelHoldsTheValues()
    {
        var handle = _driver.Create("e1", "c1", new ResourceLimits(MemoryBytes: 32 << 20, Cpus: 0.5, Pids: 16, CpusetCpus: "0"));

        Assert.NotNull(handle);
        Assert.Equal(Controllers.Select(c => $"{Root}/{c}/{_parent}/e1/c1"), handle.Paths);
        Assert.Equal(1, handle.Join.Version);
        Assert.Equal(handle.Paths.Select(p => p + "/tasks"), handle.Join.Targets);
        var memory = $"{Root}/memory/{_parent}/e1/c1";
        Assert.Equal("33554432", Read(memory, "memory.limit_in_bytes"));
        if (File.Exists(Path.Combine(memory, "memory.memsw.limit_in_bytes")))
        {
            Assert.Equal("33554432", Read(memory, "memory.memsw.limit_in_bytes"));
        }
        else
        {
            Assert.Equal("0", Read(memory, "memory.swappiness"));
        }

        Assert.Equal("100000", Read($"{Root}/cpu/{_parent}/e1/c1", "cpu.cfs_period_us"));
        Assert.Equal("50000", Read($"{Root}/cpu/{_parent}/e1/c1", "cpu.cfs_quota_us"));
        Assert.Equal("16", Read($"{Root}/pids/{_parent}/e1/c1", "pids.max"));
        Assert.Equal("0", Read($"{Root}/cpuset/{_parent}/e1/c1", "cpuset.cpus"));
        Assert.Equal(Read($"{Root}/cpuset", "cpuset.mems"), Read($"{Root}/cpuset/{_parent}/e1/c1", "cpuset.mems"));
    }

    [RootFact]
    public void Create_NoCaps_MakesOnlyTheDevicesGroup()
    {
        // No memory group without a memory cap: each one costs the kernel ~1 KiB per 64 superblocks alive on the host.
        var handle = _driver.Create("e1", "c1", ResourceLimits.None);

        Assert.Equal([$"{Root}/devices/{_parent}/e1/c1"], handle!.Paths);
        Assert.False(Directory.Exists($"{Root}/memory/{_parent}"));
        Assert.False(Directory.Exists($"{Root}/cpu/{_parent}"));
        Assert.Null(_driver.ReadStats(handle).PeakMemoryBytes);
    }

    [RootFact]
    public void Create_MemoryCapOnly_MakesTheMemoryAndDevicesGroups()
    {
        var handle = _driver.Create("e1", "c1", new ResourceLimits(MemoryBytes: 32 << 20));

        Assert.Equal([$"{Root}/memory/{_parent}/e1/c1", $"{Root}/devices/{_parent}/e1/c1"], handle!.Paths);
        Assert.Equal("33554432", Read(handle.Paths[0], "memory.limit_in_bytes"));
        Assert.False(Directory.Exists($"{Root}/pids/{_parent}"));
    }

    [RootFact]
    public void Create_Devices_DenyAllThenDockersList()
    {
        var handle = _driver.Create("e1", "c1", ResourceLimits.None)!;

        var list = Read($"{Root}/devices/{_parent}/e1/c1", "devices.list").Split('\n').Order(StringComparer.Ordinal);
        Assert.Equal(
            new[] { "b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 10:200 rwm", "c 136:* rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm" }.Order(StringComparer.Ordinal),
            list);
    }

    [RootFact]
    public void Devices_ProcessInGroup_MayMknodButNotOpenAHostDisk_NullStillWorks()
    {
        // The kernel's check, without a container: a host root shell in the group (finding 1 of issue 8: loop0 opened rw).
        var handle = _driver.Create("e1", "c1", ResourceLimits.None)!;
        var dir = Directory.CreateTempSubdirectory("isotest-dev-").FullName;
        try
        {
            var process = StartInGroup(handle,
                $"mknod {dir}/loop b 7 0 && echo made; (exec 3<>{dir}/loop) 2>/dev/null && echo OPENED-BLOCK; "
                + $"mknod {dir}/mem c 1 1 && echo made; (exec 3<{dir}/mem) 2>/dev/null && echo OPENED-MEM; echo x > /dev/null && echo null-ok",
                captureOutput: true);
            var output = process.StandardOutput.ReadToEnd();
            Assert.True(process.WaitForExit(10_000));

            Assert.Equal("made\nmade\nnull-ok\n", output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [RootFact]
    public void Create_ProcessJoinsThroughTasks_AllCapsApplyToIt()
    {
        var handle = _driver.Create("e1", "c1", new ResourceLimits(MemoryBytes: 64 << 20, Cpus: 1, Pids: 32, CpusetCpus: "0"))!;

        var process = StartInGroup(handle, "exec sleep 30");

        foreach (var dir in handle.Paths)
        {
            WaitUntil(() => Read(dir, "cgroup.procs") == process.Id.ToString(), $"pid {process.Id} in {dir}/cgroup.procs");
        }

        Assert.Contains($":memory:/{_parent}/e1/c1", File.ReadAllText($"/proc/{process.Id}/cgroup"));
        Assert.Equal("0", File.ReadAllLines($"/proc/{process.Id}/status").Single(l => l.StartsWith("Cpus_allowed_list:")).Split('\t')[1]);
    }

    [RootFact]
    public void Destroy_ProcessInGroup_KillsItAndRemovesEveryDirectory()
    {
        var handle = _driver.Create("e1", "c1", new ResourceLimits(MemoryBytes: 64 << 20, Cpus: 1, Pids: 32, CpusetCpus: "0"))!;
        var process = StartInGroup(handle, "sleep 30 & sleep 30 & exec sleep 30");
        WaitUntil(() => Read(handle.Paths[0], "cgroup.procs").Split('\n').Length == 3, "three processes in the group");

        _driver.Destroy(handle);

        Assert.True(process.WaitForExit(10_000));
        Assert.Equal(137, process.ExitCode);
        Assert.All(handle.Paths, p => Assert.False(Directory.Exists(p)));
        Assert.True(Directory.Exists($"{Root}/memory/{_parent}/e1"));

        _driver.Destroy(handle); // idempotent: already gone is not an error
    }

    [RootFact]
    public void ReadStats_ProcessExceedsMemoryCap_CountsOomKillAndPeak()
    {
        var handle = _driver.Create("e1", "c1", new ResourceLimits(MemoryBytes: 16 << 20))!;

        // tail buffers a line with no newline whole: it grows until the memory cap kills it.
        var process = StartInGroup(handle, "head -c 100m /dev/zero | tail");
        Assert.True(process.WaitForExit(60_000));
        var stats = _driver.ReadStats(handle);

        Assert.Equal(137, process.ExitCode);
        Assert.True(stats.OomKills >= 1, $"oom_kill was {stats.OomKills}");
        Assert.InRange(stats.PeakMemoryBytes!.Value, 8 << 20, 17 << 20);
        Assert.Null(stats.CpuTime); // cpuacct is a separate hierarchy here and is not made for a container
    }

    [RootFact]
    public void ReadStats_FreshGroup_NoOomKills()
    {
        var handle = _driver.Create("e1", "c1", new ResourceLimits(MemoryBytes: 16 << 20))!;

        Assert.Equal(0, _driver.ReadStats(handle).OomKills);
    }

    [RootFact]
    public void Create_CpuQuotaBelowKernelMinimum_ThrowsAndLeavesNoGroup()
    {
        var ex = Assert.Throws<ResourceLimitException>(() => _driver.Create("e1", "c1", new ResourceLimits(MemoryBytes: 16 << 20, Cpus: 0.001)));

        Assert.Contains("Container c1", ex.Message);
        Assert.Contains("CPU limit 0.001", ex.Message);
        Assert.Contains("cpu.cfs_quota_us", ex.Message);
        Assert.Contains("EINVAL", ex.Message);
        Assert.Contains("at least 0.01 CPU", ex.Message);
        foreach (var controller in Controllers)
        {
            Assert.False(Directory.Exists($"{Root}/{controller}/{_parent}/e1"), $"{controller} left behind");
        }
    }

    [RootFact]
    public void Create_CpusetOutsideParent_ThrowsNamingTheCpus()
    {
        var ex = Assert.Throws<ResourceLimitException>(() => _driver.Create("e1", "c1", new ResourceLimits(CpusetCpus: "63")));

        Assert.Contains("cpuset '63'", ex.Message);
        Assert.Contains("subset of the parent's", ex.Message);
        Assert.False(Directory.Exists($"{Root}/cpuset/{_parent}/e1/c1"));
    }

    [RootFact]
    public void Create_UnprivilegedUserWithCap_ThrowsWithDelegationFix()
    {
        var ex = AsUnprivileged(() => Record.Exception(() => _driver.Create("e1", "c1", new ResourceLimits(MemoryBytes: 16 << 20))));

        var limit = Assert.IsType<ResourceLimitException>(ex);
        Assert.Contains("memory limit 16777216 bytes", limit.Message);
        Assert.Contains($"{Root}/memory/{_parent}", limit.Message);
        Assert.Contains("EACCES", limit.Message);
        Assert.Contains("as root, for each controller needed: mkdir -p", limit.Message);
        Assert.Contains("chown -R $USER", limit.Message);
        Assert.Contains("README, \"Caps without root\"", limit.Message);
        Assert.Contains(CgroupDriver.ParentVariable, limit.Message);
    }

    [RootFact]
    public void Create_UnprivilegedUserNoCaps_ReturnsNull()
    {
        var handle = AsUnprivileged(() => _driver.Create("e1", "c1", ResourceLimits.None));

        Assert.Null(handle);
        Assert.False(Directory.Exists($"{Root}/memory/{_parent}"));
    }

    [RootFact]
    public void RemoveEngineGroup_LiveContainers_KillsAndRemovesAll()
    {
        var first = _driver.Create("e1", "c1", new ResourceLimits(Pids: 8))!;
        _driver.Create("e1", "c2", ResourceLimits.None);
        _driver.Create("e2", "c3", ResourceLimits.None);
        var process = StartInGroup(first, "exec sleep 30");
        WaitUntil(() => Read(first.Paths[0], "cgroup.procs").Length > 0, "the process in the group");
        Assert.Equal(["e1", "e2"], _driver.ListEngineGroups());

        _driver.RemoveEngineGroup("e1");

        Assert.True(process.WaitForExit(10_000));
        Assert.False(Directory.Exists($"{Root}/memory/{_parent}/e1"));
        Assert.False(Directory.Exists($"{Root}/pids/{_parent}/e1"));
        Assert.Equal(["e2"], _driver.ListEngineGroups());
    }

    [Fact]
    public void Detect_ThisMachine_MatchesTheMountedVersion()
    {
        var driver = CgroupDriver.Detect();

        Assert.NotNull(driver);
        Assert.Equal(File.Exists("/sys/fs/cgroup/cgroup.controllers") ? 2 : 1, driver.Version);
    }

    [Fact]
    public void Detect_NotACgroupFileSystem_ReturnsNull()
    {
        Assert.Null(CgroupDriver.Detect("/proc"));
    }

    private static string Read(string dir, string file) => File.ReadAllText(Path.Combine(dir, file)).Trim();

    /// <summary>Starts a shell that moves itself into the groups through their tasks files, as the init agent does.</summary>
    private System.Diagnostics.Process StartInGroup(CgroupHandle handle, string script, bool captureOutput = false)
    {
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardError = true, RedirectStandardOutput = captureOutput };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("for f; do echo 0 > \"$f\" || exit 99; done; " + script);
        info.ArgumentList.Add("sh");
        foreach (var tasks in handle.Join.Targets)
        {
            info.ArgumentList.Add(tasks);
        }

        var process = System.Diagnostics.Process.Start(info)!;
        _processes.Add(process);
        return process;
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "Timed out waiting for " + what);
            Thread.Sleep(5);
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a dedicated thread whose filesystem uid is the unprivileged user 1001:
    /// the kernel drops CAP_DAC_OVERRIDE with it, so cgroupfs refuses mkdir exactly as for a rootless engine.
    /// fsuid is per thread in the kernel and glibc does not spread it, so the rest of the process stays root.
    /// </summary>
    private static T AsUnprivileged<T>(Func<T> action)
    {
        T result = default!;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            setfsuid(1001);
            try
            {
                Assert.Equal(1001, setfsuid(uint.MaxValue)); // -1 queries the current fsuid
                result = action();
            }
            catch (Exception ex)
            {
                failure = ex;
            }
            finally
            {
                setfsuid(0);
            }
        });
        thread.Start();
        thread.Join();
        return failure is null ? result : throw new InvalidOperationException("failed as uid 1001", failure);
    }

    // DllImport, not LibraryImport: the source-generated form needs unsafe code enabled for the whole test project.
    [DllImport("libc")]
    private static extern int setfsuid(uint fsuid);
}
