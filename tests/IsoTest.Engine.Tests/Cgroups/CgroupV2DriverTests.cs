using IsoTest;
using Xunit;
using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Tests.Cgroups.Fakes;
using static Tmds.Linux.LibC;

namespace IsoTest.Engine.Tests.Cgroups;

public sealed class CgroupV2DriverTests : IDisposable
{
    private static readonly ResourceLimits AllCaps = new(MemoryBytes: 16 << 20, Cpus: 0.5, Pids: 64, CpusetCpus: "0-1");

    private readonly FakeCgroupV2FileSystem _fs = new();

    public void Dispose() => _fs.Dispose();

    private CgroupV2Driver Driver(string parent = "isotest") => new(_fs.Root, parent, _fs);

    [Fact]
    public void Create_AllCaps_EnablesControllersFromParentDownAndWritesLimits()
    {
        var handle = Driver().Create("e1", "c1", AllCaps);

        Assert.NotNull(handle);
        var dir = _fs.Full("isotest/e1/c1");
        Assert.Equal([dir], handle.Paths);
        Assert.Equal(2, handle.Join.Version);
        Assert.Equal([dir], handle.Join.Targets);
        Assert.Equal(
            [
                ("cgroup.subtree_control", "+cpuset"), // the root does not enable cpuset: enabled one level up
                ("isotest/cgroup.subtree_control", "+memory +cpu +pids +cpuset"),
                ("isotest/e1/cgroup.subtree_control", "+memory +cpu +pids +cpuset"),
                ("isotest/e1/c1/memory.max", "16777216"),
                ("isotest/e1/c1/memory.swap.max", "0"),
                ("isotest/e1/c1/cpu.max", "50000 100000"),
                ("isotest/e1/c1/pids.max", "64"),
                ("isotest/e1/c1/cpuset.cpus", "0-1"),
            ],
            _fs.Writes);
        Assert.Equal("cpu cpuset memory pids", File.ReadAllText(_fs.Full("isotest/e1/cgroup.subtree_control")).Trim());
        Assert.Equal("16777216", File.ReadAllText(_fs.Full("isotest/e1/c1/memory.max")).Trim());
    }

    [Fact]
    public void Create_SecondContainerSameEngine_WritesOnlyItsLimits()
    {
        var driver = Driver();
        driver.Create("e1", "c1", AllCaps);
        _fs.Writes.Clear();

        driver.Create("e1", "c2", new ResourceLimits(Pids: 8));

        Assert.Equal([("isotest/e1/c2/pids.max", "8")], _fs.Writes);
    }

    [Fact]
    public void Create_NoCaps_EnablesEveryUsedControllerAtTheParent_MemoryBelowForStats_AndWritesNoLimit()
    {
        var handle = Driver().Create("e1", "c1", ResourceLimits.None);

        Assert.NotNull(handle);
        Assert.Equal(
            [("isotest/cgroup.subtree_control", "+memory +cpu +pids"), ("isotest/e1/cgroup.subtree_control", "+memory")],
            _fs.Writes); // cpuset is not among the root's enabled controllers here: nothing asked for it
        Assert.True(File.Exists(_fs.Full("isotest/e1/c1/memory.peak")));
    }

    [Fact]
    public void Create_CapsAfterAContainerWithout_WriteNothingMoreAtTheParent()
    {
        // Enabling a controller at the parent later would move the processes of its whole subtree (the rootless
        // engine's newuidmap among them) into it; the first container enabled all the parent offers.
        using var fs = new FakeCgroupV2FileSystem(rootSubtree: "cpuset cpu io memory pids");
        var driver = new CgroupV2Driver(fs.Root, "isotest", fs);
        driver.Create("e1", "c1", ResourceLimits.None);
        Assert.Equal("cpu cpuset memory pids", File.ReadAllText(fs.Full("isotest/cgroup.subtree_control")).Trim());
        fs.Writes.Clear();

        driver.Create("e1", "c2", new ResourceLimits(CpusetCpus: "0", Pids: 8));

        Assert.DoesNotContain(fs.Writes, w => w.Path == "isotest/cgroup.subtree_control");
        Assert.Contains(("isotest/e1/cgroup.subtree_control", "+pids +cpuset"), fs.Writes);
        Assert.Equal("0", File.ReadAllText(fs.Full("isotest/e1/c2/cpuset.cpus")).Trim());
    }

    [Fact]
    public void Create_SubtreeControlRefusedForAMoment_IsRetried()
    {
        // EPERM while a privileged process (a setuid newuidmap) is in the subtree: gone a few milliseconds later.
        _fs.FailingWritesFor["isotest/cgroup.subtree_control"] = (EPERM, 3);

        var handle = Driver().Create("e1", "c1", AllCaps);

        Assert.NotNull(handle);
        Assert.Equal(4, _fs.Writes.Count(w => w.Path == "isotest/cgroup.subtree_control"));
        Assert.Equal("64", File.ReadAllText(_fs.Full("isotest/e1/c1/pids.max")).Trim());
    }

    [Fact]
    public void Create_SubtreeControlRefusedForGood_NamesThePrivilegedProcessAndTheFix_LeavesNothing()
    {
        _fs.FailingWritesFor["isotest/cgroup.subtree_control"] = (EPERM, int.MaxValue);

        var ex = Assert.Throws<ResourceLimitException>(() => Driver().Create("e1", "c1", new ResourceLimits(CpusetCpus: "0")));

        Assert.Contains("cpuset '0'", ex.Message);
        Assert.Contains("(EPERM)", ex.Message);
        Assert.Contains("setuid program", ex.Message);
        Assert.Contains($"> {_fs.Full("isotest/cgroup.subtree_control")}", ex.Message); // the fix: enable them once as root
        Assert.False(Directory.Exists(_fs.Full("isotest")));
    }

    [Fact]
    public void Create_NestedParentFromName_UsesThatPath()
    {
        var handle = Driver("delegated/isotest").Create("e1", "c1", new ResourceLimits(Pids: 5));

        Assert.Equal([_fs.Full("delegated/isotest/e1/c1")], handle!.Paths);
        Assert.Equal("5", File.ReadAllText(_fs.Full("delegated/isotest/e1/c1/pids.max")).Trim());
    }

    [Fact]
    public void Create_ControllerMissing_ThrowsNamingItAndLeavesNothing()
    {
        using var fs = new FakeCgroupV2FileSystem(rootControllers: "cpu io memory pids");
        var driver = new CgroupV2Driver(fs.Root, "isotest", fs);

        var ex = Assert.Throws<ResourceLimitException>(() => driver.Create("e1", "c1", new ResourceLimits(MemoryBytes: 1 << 24, CpusetCpus: "0")));

        Assert.Contains("cpuset '0'", ex.Message);
        Assert.Contains("'cpuset' cgroup controller is not available", ex.Message);
        Assert.Contains("cgroup.subtree_control", ex.Message);
        Assert.False(Directory.Exists(fs.Full("isotest")));
    }

    [Fact]
    public void JoinRefused_NamesTheCommonAncestorRuleWhereTheEngineRunsAndTheFix()
    {
        var handle = Driver().Create("e1", "c1", AllCaps)!;

        var why = Driver().JoinRefused(handle, Environment.ProcessId);

        // The mover's group is this process's (outside the fake tree), so the common ancestor is a prefix of both.
        Assert.Contains($"into {_fs.Full("isotest/e1/c1")}", why);
        Assert.Contains("common ancestor", why);
        Assert.Contains("the engine's agents start in /", why);
        Assert.Contains("Delegate=yes", why);
        Assert.Contains(CgroupDriver.ParentVariable, why);
    }

    [Fact]
    public void Create_ControllerNotDelegated_ThrowsAndLeavesNothing()
    {
        _fs.Undelegatable.Add("cpuset");

        var ex = Assert.Throws<ResourceLimitException>(() => Driver().Create("e1", "c1", AllCaps));

        Assert.Contains("'cpuset' cgroup controller is not available", ex.Message);
        Assert.Contains(CgroupDriver.ParentVariable, ex.Message);
        Assert.False(Directory.Exists(_fs.Full("isotest")));
    }

    [Fact]
    public void Create_AttachesDockersDeviceProgramToTheContainersGroup()
    {
        var first = Driver().Create("e1", "c1", ResourceLimits.None);
        var second = Driver().Create("e1", "c2", AllCaps);

        Assert.NotNull(first);
        Assert.NotNull(second);
        var program = IsoTest.Engine.Security.CgroupDeviceProgram.Build(IsoTest.Engine.Security.DeviceRules.DockerDefault);
        Assert.Equal(["isotest/e1/c1", "isotest/e1/c2"], _fs.DeviceFilters.Select(f => f.Dir));
        Assert.All(_fs.DeviceFilters, f => Assert.Equal(program, f.Program));
    }

    [Fact]
    public void Create_DeviceProgramRefused_RootFailsAndLeavesNothing_RootlessGoesOn()
    {
        _fs.DeviceFilterErrno = EPERM;

        if (Environment.IsPrivilegedProcess)
        {
            // As root a refusal means no CONFIG_CGROUP_BPF or a locked-down kernel: devices would be open, so fail.
            var ex = Assert.Throws<ResourceLimitException>(() => Driver().Create("e1", "c1", ResourceLimits.None));
            Assert.Contains("cannot restrict devices", ex.Message);
            Assert.Contains("EPERM", ex.Message);
            Assert.False(Directory.Exists(_fs.Full("isotest/e1/c1")));
        }
        else
        {
            // Rootless: the user namespace cannot make device nodes; the container runs without the program.
            Assert.NotNull(Driver().Create("e1", "c1", ResourceLimits.None));
            Assert.Empty(_fs.DeviceFilters);
        }
    }

    [Fact]
    public void Create_KernelRejectsMemoryLimit_ThrowsWithFileAndErrnoAndRemovesGroups()
    {
        _fs.FailingWrites["memory.max"] = EINVAL;

        var ex = Assert.Throws<ResourceLimitException>(() => Driver().Create("e1", "c1", AllCaps));

        Assert.Contains("memory limit 16777216 bytes", ex.Message);
        Assert.Contains(_fs.Full("isotest/e1/c1/memory.max"), ex.Message);
        Assert.Contains("EINVAL", ex.Message);
        Assert.Contains("raise the memory limit", ex.Message);
        Assert.False(Directory.Exists(_fs.Full("isotest")));
    }

    [Fact]
    public void Create_FailsAfterEarlierContainer_KeepsSharedGroupsRemovesOnlyItsOwn()
    {
        var driver = Driver();
        driver.Create("e1", "c1", AllCaps);
        _fs.FailingWrites["cpu.max"] = EINVAL;

        Assert.Throws<ResourceLimitException>(() => driver.Create("e1", "c2", AllCaps));

        Assert.True(Directory.Exists(_fs.Full("isotest/e1/c1")));
        Assert.False(Directory.Exists(_fs.Full("isotest/e1/c2")));
    }

    [Fact]
    public void Create_ParentNotWritableNoCaps_ReturnsNull()
    {
        _fs.Unwritable.Add(".");

        Assert.Null(Driver().Create("e1", "c1", ResourceLimits.None));
        Assert.False(Directory.Exists(_fs.Full("isotest")));
    }

    [Fact]
    public void Create_ParentNotWritableWithCap_ThrowsWithDelegationFix()
    {
        _fs.Unwritable.Add(".");

        var ex = Assert.Throws<ResourceLimitException>(() => Driver().Create("e1", "c1", new ResourceLimits(Pids: 10)));

        Assert.Contains("pids limit 10", ex.Message);
        Assert.Contains("EACCES", ex.Message);
        Assert.Contains(_fs.Full("isotest"), ex.Message);
        Assert.Contains("chown -R $USER", ex.Message);
        Assert.Contains("Delegate=yes for user@.service", ex.Message);
        Assert.Contains("README, \"Caps without root\"", ex.Message);
        Assert.Contains(CgroupDriver.ParentVariable, ex.Message);
    }

    [Fact]
    public void Create_NoSwapAccounting_SkipsSwapMax()
    {
        using var fs = new FakeCgroupV2FileSystem(withSwap: false);

        new CgroupV2Driver(fs.Root, "isotest", fs).Create("e1", "c1", new ResourceLimits(MemoryBytes: 1 << 24));

        Assert.Contains(("isotest/e1/c1/memory.max", "16777216"), fs.Writes);
        Assert.DoesNotContain(fs.Writes, w => w.Path.EndsWith("memory.swap.max", StringComparison.Ordinal));
    }

    [Fact]
    public void ReadStats_KernelCounters_ParsesPeakCpuAndOomKills()
    {
        var handle = Driver().Create("e1", "c1", AllCaps)!;
        File.WriteAllText(_fs.Full("isotest/e1/c1/memory.peak"), "12345678\n");
        File.WriteAllText(_fs.Full("isotest/e1/c1/cpu.stat"), "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n");
        File.WriteAllText(_fs.Full("isotest/e1/c1/memory.events"), "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n");

        var stats = Driver().ReadStats(handle);

        Assert.Equal(new CgroupStats(12345678, TimeSpan.FromSeconds(2.5), 2), stats);
    }

    [Fact]
    public void ReadStats_NoMemoryController_GivesNullPeakAndZeroKills()
    {
        using var fs = new FakeCgroupV2FileSystem(rootControllers: "cpu pids", rootSubtree: "cpu pids");
        var driver = new CgroupV2Driver(fs.Root, "isotest", fs);
        var handle = driver.Create("e1", "c1", new ResourceLimits(Pids: 4))!;

        var stats = driver.ReadStats(handle);

        Assert.Null(stats.PeakMemoryBytes);
        Assert.Equal(TimeSpan.Zero, stats.CpuTime);
        Assert.Equal(0, stats.OomKills);
    }

    [Fact]
    public void Destroy_WithCgroupKill_KillsThroughItAndRemovesGroup()
    {
        var driver = Driver();
        var handle = driver.Create("e1", "c1", AllCaps)!;
        _fs.AddProcesses("isotest/e1/c1", 4242, 4243);

        driver.Destroy(handle);

        Assert.Contains(("isotest/e1/c1/cgroup.kill", "1"), _fs.Writes);
        Assert.Empty(_fs.Killed);
        Assert.False(Directory.Exists(_fs.Full("isotest/e1/c1")));
        Assert.True(Directory.Exists(_fs.Full("isotest/e1")));
    }

    [Fact]
    public void Destroy_WithoutCgroupKill_KillsEveryPidAndRemovesGroup()
    {
        using var fs = new FakeCgroupV2FileSystem(withKillFile: false);
        var driver = new CgroupV2Driver(fs.Root, "isotest", fs);
        var handle = driver.Create("e1", "c1", AllCaps)!;
        fs.AddProcesses("isotest/e1/c1", 4242, 4243);

        driver.Destroy(handle);

        Assert.Equal([4242, 4243], fs.Killed);
        Assert.False(Directory.Exists(fs.Full("isotest/e1/c1")));
    }

    [Fact]
    public void Destroy_Twice_SecondIsNoOp()
    {
        var driver = Driver();
        var handle = driver.Create("e1", "c1", AllCaps)!;

        driver.Destroy(handle);
        driver.Destroy(handle);

        Assert.False(Directory.Exists(handle.Paths[0]));
    }

    [Fact]
    public void RemoveEngineGroup_ContainersWithProcesses_RemovesAllChildrenFirst()
    {
        var driver = Driver();
        driver.Create("e1", "c1", AllCaps);
        driver.Create("e1", "c2", ResourceLimits.None);
        driver.Create("e2", "c3", ResourceLimits.None);
        _fs.AddProcesses("isotest/e1/c1", 10);
        _fs.AddProcesses("isotest/e1/c2", 11);
        Assert.Equal(["e1", "e2"], driver.ListEngineGroups());

        driver.RemoveEngineGroup("e1");

        Assert.False(Directory.Exists(_fs.Full("isotest/e1")));
        Assert.Equal(["e2"], driver.ListEngineGroups());

        // The driver makes the engine group again after a sweep.
        Assert.NotNull(driver.Create("e1", "c4", AllCaps));
    }

    [Fact]
    public void ListEngineGroups_NoParentYet_IsEmpty()
    {
        Assert.Empty(Driver().ListEngineGroups());
    }

    [Fact]
    public void Destroy_ATaskThatNeverLeaves_WaitsWithBackoffFor30SecondsThenSaysWhatIsBusy()
    {
        var driver = Driver();
        var handle = driver.Create("e1", "c1", AllCaps)!;
        _fs.AddProcesses("isotest/e1/c1", 4242);
        _fs.Unkillable.Add(4242);

        var error = Assert.Throws<IOException>(() => driver.Destroy(handle));

        Assert.Contains(_fs.Full("isotest/e1/c1"), error.Message);
        Assert.Contains("EBUSY", error.Message);
        Assert.Contains("cgroup.procs", error.Message);
        // Long enough for tasks that take seconds to die (emulation, memory pressure), yet bounded.
        Assert.InRange(_fs.Pauses.Sum(p => p.TotalMilliseconds), 30_000, 30_100);
        Assert.Equal(TimeSpan.FromMilliseconds(2), _fs.Pauses[0]);
        Assert.Equal(TimeSpan.FromMilliseconds(100), _fs.Pauses.Max());
    }

    [Fact]
    public void RemoveIfUnowned_AnotherDriversGroups_StayWhileItHoldsThem_EvenEmpty()
    {
        var owner = Driver();
        owner.Create("e1", "c1", ResourceLimits.None);

        Assert.False(Driver().RemoveIfUnowned("e1"));

        Assert.True(Directory.Exists(_fs.Full("isotest/e1/c1")));
    }

    [Fact]
    public void RemoveIfUnowned_GroupsNobodyHolds_GoWhenEmpty_StayWithAProcessInThem()
    {
        // What an engine leaves when its teardown could not remove a busy group and it then ended: no hold.
        foreach (var dir in (string[])["isotest", "isotest/e1", "isotest/e1/c1", "isotest/e2", "isotest/e2/c2"])
        {
            Assert.True(_fs.CreateDirectory(_fs.Full(dir)).IsOk);
        }

        _fs.AddProcesses("isotest/e2/c2", 4242);
        var sweeper = Driver();

        Assert.True(sweeper.RemoveIfUnowned("e1"));
        Assert.False(sweeper.RemoveIfUnowned("e2"));
        Assert.False(sweeper.RemoveIfUnowned("e3")); // no such group

        Assert.False(Directory.Exists(_fs.Full("isotest/e1")));
        Assert.True(Directory.Exists(_fs.Full("isotest/e2/c2")));
        Assert.Empty(_fs.Killed);
    }

    [Fact]
    public void RemoveEngineGroup_DropsTheHold_SoALaterSweepTakesWhatABusyGroupLeft()
    {
        var owner = Driver();
        owner.Create("e1", "c1", ResourceLimits.None);
        _fs.AddProcesses("isotest/e1/c1", 4242);
        _fs.Unkillable.Add(4242);
        Assert.Throws<IOException>(() => owner.RemoveEngineGroup("e1"));
        var sweeper = Driver();
        Assert.False(sweeper.RemoveIfUnowned("e1")); // a process is still in it

        _fs.Unkillable.Clear();
        _fs.Kill(4242); // it finally died

        Assert.True(sweeper.RemoveIfUnowned("e1"));
        Assert.False(Directory.Exists(_fs.Full("isotest/e1")));
    }

    [Fact]
    public void Create_ASweepRemovesTheNewEngineGroupBeforeItIsHeld_ItIsMadeAgainAndHeld()
    {
        // The race the hold closes: another engine's sweep finds the engine group right after our mkdir, empty and
        // not held yet, and removes it. The hold then finds it gone and makes it again.
        var sweeper = Driver();
        var swept = false;
        _fs.BeforeLock = (path, exclusive) =>
        {
            if (!exclusive && !swept && path == _fs.Full("isotest/e1"))
            {
                swept = true;
                Assert.True(sweeper.RemoveIfUnowned("e1"));
            }
        };

        var handle = Driver().Create("e1", "c1", new ResourceLimits(Pids: 8));

        Assert.True(swept);
        Assert.NotNull(handle);
        Assert.Equal("8", File.ReadAllText(_fs.Full("isotest/e1/c1/pids.max")).Trim());
        Assert.False(sweeper.RemoveIfUnowned("e1"));
        Assert.True(Directory.Exists(_fs.Full("isotest/e1/c1")));
    }
}
