using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Native;
using IsoTest.Engine.Tests.Support;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Cgroups;

/// <summary>
/// The v2 driver on a real cgroup v2 kernel: what the fake tree (CgroupV2DriverTests) cannot prove, because
/// only the kernel enforces a cap, places a task or kills a group. Skipped on v1 hosts; .ci/v2vm runs them
/// on a v2 guest, as root and as a user with a delegated subtree. The container's group is read from the
/// host side after the payload exited: the engine removes it only when the container is removed.
/// </summary>
public sealed class V2KernelTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    [V2KernelFact]
    public async Task CloneIntoCgroup_InitAndPayloadStartInTheContainersGroup_TheShimStaysOutside()
    {
        await using var container = await _engine.CreateAsync(Specs.Shell("cat /proc/self/cgroup; exec sleep 1000") with
        {
            Limits = new ResourceLimits(MemoryBytes: 64L << 20),
        });
        await container.StartAsync();
        var dir = CgroupV2.ContainerDir(_engine, container);

        // The payload's first command already ran in the group, as the root of its cgroup namespace.
        Assert.Equal("0::/", await FirstLineAsync(container));
        Assert.Equal(["isotest-init", "sleep"], await CgroupV2.CommsAsync(dir, "isotest-init", "sleep"));
        var init = CgroupV2.Procs(dir).Single(p => CgroupV2.Comm(p) == "isotest-init");
        Assert.Equal(dir, CgroupV2.CgroupOf(init));

        // The shim that cloned init (a child of this process) never joined: clone3 put only the child there.
        var shim = CgroupV2.ParentOf(init);
        Assert.Equal("isotest-init", CgroupV2.Comm(shim));
        Assert.Equal(CgroupV2.CgroupOf(Environment.ProcessId), CgroupV2.CgroupOf(shim));
    }

    [V2KernelFact(NeedsSwap = true)]
    public async Task MemoryMaxAndSwapMaxZero_CappedAllocationIsOomKilledInsteadOfSwapped_ReportedFromMemoryEvents()
    {
        const string Hog = "head -c 96m /dev/zero | tail > /dev/null && echo survived";

        // The control: the same allocation under memory.max alone survives by swapping, so it is
        // memory.swap.max=0 that makes the kill below, not a lack of swap.
        using (var scratch = CgroupV2.MakeScratch("v2-swap", "memory"))
        {
            Assert.Contains("memory", CgroupV2.Read(scratch.Dir, "cgroup.controllers").Split(' '));
            File.WriteAllText(Path.Combine(scratch.Dir, "memory.max"), (32L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture));
            var (code, stdout) = await RunInGroupAsync(scratch.Dir, Hog);
            Assert.True(code == 0 && stdout.Contains("survived", StringComparison.Ordinal), $"the uncapped-swap control did not survive: exit {code}, {stdout}");
            Assert.Equal(0, CgroupV2.Keyed(scratch.Dir, "memory.events", "oom_kill"));
        }

        await using var container = await _engine.CreateAsync(Specs.Shell(Hog) with { Limits = new ResourceLimits(MemoryBytes: 32L << 20) });
        await container.StartAsync();
        var exit = await container.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        var dir = CgroupV2.ContainerDir(_engine, container);

        Assert.Equal((32L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), CgroupV2.Read(dir, "memory.max"));
        Assert.Equal("0", CgroupV2.Read(dir, "memory.swap.max"));
        Assert.Equal(137, exit);
        Assert.True(container.OomKilled, "the engine did not report the OOM kill");
        Assert.True(CgroupV2.Keyed(dir, "memory.events", "oom_kill") >= 1, CgroupV2.Read(dir, "memory.events"));
        Assert.DoesNotContain(container.GetLogs(), l => l.Text.Contains("survived", StringComparison.Ordinal));
    }

    [V2KernelFact]
    public async Task CpuMax_IsWritten_AndTheKernelThrottlesTheContainer()
    {
        await using var container = await _engine.CreateAsync(Specs.Shell(CpuSpin.Script(ticks: 40)) with
        {
            Limits = new ResourceLimits(Cpus: 0.2),
        });
        await container.StartAsync();
        Assert.Equal(0, await container.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5)));
        var dir = CgroupV2.ContainerDir(_engine, container);

        Assert.Equal("20000 100000", CgroupV2.Read(dir, "cpu.max"));
        // 0.4 s of CPU at 20 ms per 100 ms period needs at least 20 periods, each ended by the throttle.
        Assert.True(CgroupV2.Keyed(dir, "cpu.stat", "nr_throttled") >= 10, CgroupV2.Read(dir, "cpu.stat"));
        Assert.True(CgroupV2.Keyed(dir, "cpu.stat", "throttled_usec") > 0, CgroupV2.Read(dir, "cpu.stat"));
    }

    [V2KernelFact]
    public async Task PidsMax_IsWritten_AndForksPastItAreRefused()
    {
        // Each fork that got a pid prints a line (echo is a builtin); dash gives up at the first refused one.
        await using var container = await _engine.CreateAsync(Specs.Shell("i=0; while [ $i -lt 100 ]; do sleep 1000 & echo forked; i=$((i+1)); done") with
        {
            Limits = new ResourceLimits(Pids: 16),
        });
        await container.StartAsync();
        await container.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        var dir = CgroupV2.ContainerDir(_engine, container);

        Assert.Equal("16", CgroupV2.Read(dir, "pids.max"));
        Assert.True(CgroupV2.Keyed(dir, "pids.events", "max") >= 1, CgroupV2.Read(dir, "pids.events"));
        Assert.InRange(container.GetLogs().Count(l => l.Text == "forked"), 1, 14); // 16 minus init and the shell
    }

    [V2KernelFact(MinCpus = 2)]
    public async Task Cpuset_PinsTheContainerToTheSecondCpu()
    {
        await using var container = await _engine.CreateAsync(Specs.Shell("grep Cpus_allowed_list /proc/self/status") with
        {
            Limits = new ResourceLimits(CpusetCpus: "1"),
        });
        await container.StartAsync();
        await container.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        var dir = CgroupV2.ContainerDir(_engine, container);

        Assert.Equal("1", CgroupV2.Read(dir, "cpuset.cpus"));
        Assert.Equal("1", CgroupV2.Read(dir, "cpuset.cpus.effective"));
        Assert.Equal("Cpus_allowed_list:\t1", await FirstLineAsync(container));
    }

    [V2KernelFact]
    public async Task Cpuset_ACpuTheMachineDoesNotHave_IsAClearErrorAndLeavesNoGroup()
    {
        var spec = Specs.Shell("true") with { Limits = new ResourceLimits(CpusetCpus: "4095") };

        var error = await Assert.ThrowsAsync<ResourceLimitException>(() => _engine.CreateAsync(spec));

        Assert.Contains("cpuset '4095'", error.Message);
        Assert.Contains("cpuset.cpus", error.Message);
        Assert.Empty(Leaks.ContainerCgroups(_engine.EngineId));
    }

    [V2KernelFact]
    public async Task SelfMoveFallback_InitWritesItselfIn_MemoryCapOomKillsPidsCapHoldsAndTheGroupGoes()
    {
        // What kernels before 5.7 (no CLONE_INTO_CGROUP) do: init is cloned where the shim is and moves itself
        // into the container's group (cgroup.procs, opened by the shim from the host's view) before it unshares
        // its cgroup namespace and before the payload exists, so the payload starts capped all the same.
        var driver = new CgroupV2Driver(CgroupV2.Root, CgroupV2.Parent, CgroupFileSystem.Instance) { SelfMove = true };
        await using var engine = new EngineBackend(null, null, driver);

        await using var view = await engine.CreateAsync(Specs.Shell("cat /proc/self/cgroup; exec sleep 1000") with
        {
            Limits = new ResourceLimits(MemoryBytes: 64L << 20),
        });
        await view.StartAsync();
        var viewDir = CgroupV2.ContainerDir(engine, view);
        Assert.Equal("0::/", await FirstLineAsync(view));
        Assert.Equal(["isotest-init", "sleep"], await CgroupV2.CommsAsync(viewDir, "isotest-init", "sleep"));
        await view.DisposeAsync();
        Assert.False(Directory.Exists(viewDir), $"{viewDir} is still there");

        await using var hog = await engine.CreateAsync(Specs.Shell("head -c 96m /dev/zero | tail > /dev/null && echo survived") with
        {
            Limits = new ResourceLimits(MemoryBytes: 32L << 20),
        });
        await hog.StartAsync();
        Assert.Equal(137, await hog.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5)));
        var hogDir = CgroupV2.ContainerDir(engine, hog);
        Assert.True(hog.OomKilled, "the engine did not report the OOM kill");
        Assert.True(CgroupV2.Keyed(hogDir, "memory.events", "oom_kill") >= 1, CgroupV2.Read(hogDir, "memory.events"));

        await using var forks = await engine.CreateAsync(Specs.Shell("i=0; while [ $i -lt 100 ]; do sleep 1000 & echo forked; i=$((i+1)); done") with
        {
            Limits = new ResourceLimits(Pids: 16),
        });
        await forks.StartAsync();
        await forks.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        var forksDir = CgroupV2.ContainerDir(engine, forks);
        Assert.True(CgroupV2.Keyed(forksDir, "pids.events", "max") >= 1, CgroupV2.Read(forksDir, "pids.events"));
        Assert.InRange(forks.GetLogs().Count(l => l.Text == "forked"), 1, 14); // 16 minus init and the shell

        await hog.DisposeAsync();
        await forks.DisposeAsync();
        Assert.False(Directory.Exists(hogDir), $"{hogDir} is still there");
        Assert.False(Directory.Exists(forksDir), $"{forksDir} is still there");
        await engine.DisposeAsync();
        Assert.Empty(Leaks.ContainerCgroups(engine.EngineId));
    }

    [V2KernelFact]
    public async Task CgroupKill_RemovingTheContainerKillsEveryProcessInItsGroupAndRemovesTheGroup()
    {
        // Processes that keep forking and ignore SIGTERM, and one from outside the container's pid namespace
        // (a host process moved into its group), which the namespace's end would not take: only a kill of
        // the whole group gets them all.
        var container = await _engine.CreateAsync(Specs.Shell(
            "trap '' TERM; for i in 1 2 3 4 5 6; do (trap '' TERM; while :; do sleep 1; done) & done; echo started; exec sleep 1000") with
        {
            Limits = new ResourceLimits(Pids: 64),
        });
        await container.StartAsync();
        Assert.Equal("started", await FirstLineAsync(container));
        var dir = CgroupV2.ContainerDir(_engine, container);
        Assert.True(File.Exists(Path.Combine(dir, "cgroup.kill")), "no cgroup.kill (Linux 5.14+): the kill-until-empty fallback would run");
        using var outsider = System.Diagnostics.Process.Start("sleep", "1000");
        CgroupV2.Move(outsider.Id, dir);
        var pids = CgroupV2.Procs(dir);
        Assert.Contains(outsider.Id, pids);
        Assert.True(pids.Count >= 9, $"expected init, six loops, the sleep and the outsider, saw {pids.Count}");

        await container.DisposeAsync();

        Assert.False(Directory.Exists(dir), $"{dir} is still there");
        Assert.True(outsider.WaitForExit(TimeSpan.FromSeconds(30)), "the host process moved into the group survived the teardown");
        Assert.All(pids.Where(p => p != outsider.Id), pid => Assert.False(Leaks.IsAlive(pid), $"process {pid} survived the teardown"));
    }

    private static async Task<string> FirstLineAsync(IContainer container)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await foreach (var line in container.FollowLogsAsync(cts.Token))
        {
            return line.Text;
        }

        throw new InvalidOperationException("the container printed nothing");
    }

    /// <summary>Runs a shell script in <paramref name="dir"/>: the shell moves itself there before the script runs.</summary>
    private static async Task<(int Code, string Stdout)> RunInGroupAsync(string dir, string script)
    {
        var start = new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", $"echo $$ > {dir}/cgroup.procs && exec /bin/sh -c '{script}'"])
        {
            RedirectStandardOutput = true,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync();
        return (process.ExitCode, stdout);
    }
}
