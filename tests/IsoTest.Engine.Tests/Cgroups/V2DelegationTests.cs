using IsoTest.Engine.Cgroups;
using IsoTest.Engine.Native;
using IsoTest.Engine.Process;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Cgroups;

/// <summary>
/// cgroup v2's delegation rules on a real kernel, where a rootless engine meets them: a task moves only
/// between groups below a common ancestor whose cgroup.procs the mover may write, and a controller is
/// there for a group only when its parent enables it. Serial: one test moves this whole test process.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class V2DelegationTests
{
    [V2KernelFact]
    public async Task CommonAncestorRule_EngineOutsideTheSubtreeItPlacesContainersIn_IsRefusedRootlessWithAClearError()
    {
        // scratch/a holds the engine (this process); scratch/b is the engine's parent. Moving a task from a to
        // b/<engine>/<container> needs write access to cgroup.procs of scratch, their common ancestor: made
        // read-only here, as the cgroup above a systemd delegation is root's. Root may write anyway.
        var home = CgroupV2.CgroupOf(Environment.ProcessId);
        using var scratch = CgroupV2.MakeScratch("v2-ancestor", "memory");
        var a = scratch.Child("a");
        scratch.Child("b");
        var procs = Path.Combine(scratch.Dir, "cgroup.procs");
        var mode = File.GetUnixFileMode(procs);

        // Init is forked by the engine's spawner, which stays where the process was at its first container. This
        // process has started containers before, from home, so the test gives its engine an agent of its own path:
        // its spawner starts in a, as an engine started in a would.
        var agent = Path.Combine(Path.GetTempPath(), $"isotest-agent-{Guid.NewGuid():N}");
        File.Copy(AgentLocator.Find(), agent);

        // Within one's own delegated subtree the move is allowed: the common ancestor is the delegated group.
        CgroupV2.Move(Environment.ProcessId, a);
        File.SetUnixFileMode(procs, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        try
        {
            // Without subordinate ranges (empty files): with them, the rootless shim clones the container from inside the
            // engine's shared user namespace, where the user's own files yield to CAP_DAC_OVERRIDE, so a read-only mode
            // is no barrier there; only an ancestor of another owner (root's, as above a systemd delegation) is, and a
            // rootless test cannot make one.
            var noRanges = Path.Combine(Path.GetTempPath(), $"isotest-noranges-{Guid.NewGuid():N}");
            File.WriteAllText(noRanges, "");

            await using var engine = new EngineBackend(agent, null, new CgroupV2Driver(CgroupV2.Root, scratch.Relative + "/b", CgroupFileSystem.Instance),
                subordinateIdFiles: (noRanges, noRanges));
            File.Delete(noRanges); // read when the engine is made
            var spec = Specs.Shell("echo inside") with { Limits = new ResourceLimits(MemoryBytes: 64L << 20) };
            if (Specs.IsRoot)
            {
                var result = await engine.RunAsync(spec, TimeSpan.FromMinutes(2));
                Assert.Equal((0, "inside\n"), (result.ExitCode, result.Stdout));
                return;
            }

            var error = await Assert.ThrowsAsync<ContainerStartException>(() => engine.RunAsync(spec, TimeSpan.FromMinutes(2)));
            Assert.Contains("common ancestor", error.Message);
            Assert.Contains(a, error.Message);                         // where the engine (its spawner) runs
            Assert.Contains(scratch.Dir + "/b/" + engine.EngineId, error.Message); // where the container was to go
            Assert.Contains("Delegate=yes", error.Message);            // and the fix
            Assert.Empty(Leaks.ContainerCgroups(engine.EngineId));
        }
        finally
        {
            File.SetUnixFileMode(procs, mode);
            CgroupV2.Move(Environment.ProcessId, home);
            await EngineLoop.Shared.RetireSpawnerAsync(agent); // it sits in a
            File.Delete(agent);
        }
    }

    [V2KernelFact]
    public async Task ControllerNotDelegated_IsAClearErrorNamingTheControllerAndTheFix()
    {
        // mid has a process of its own, so no controller can be enabled for its children ("no internal
        // processes"); a parent below it lacks memory as a delegation without it would, for root too.
        using var scratch = CgroupV2.MakeScratch("v2-nodelegate", "memory");
        var parent = scratch.Child("parent");
        using var squatter = System.Diagnostics.Process.Start("sleep", "1000");
        try
        {
            CgroupV2.Move(squatter.Id, scratch.Dir);
            Assert.DoesNotContain("memory", CgroupV2.Read(parent, "cgroup.controllers").Split(' '));
            await using var engine = new EngineBackend(null, null, new CgroupV2Driver(CgroupV2.Root, Path.GetRelativePath(CgroupV2.Root, parent), CgroupFileSystem.Instance));

            var error = await Assert.ThrowsAsync<ResourceLimitException>(() => engine.CreateAsync(Specs.Shell("true") with
            {
                Limits = new ResourceLimits(MemoryBytes: 64L << 20),
            }));

            Assert.Contains("memory limit 67108864 bytes", error.Message);
            Assert.Contains("'memory' cgroup controller is not available", error.Message);
            Assert.Contains(Path.Combine(parent, "cgroup.controllers"), error.Message);
            Assert.Contains("processes of its own", error.Message); // why enabling it above failed
            Assert.Contains("Delegate=", error.Message);
            Assert.Empty(Directory.EnumerateDirectories(parent)); // no engine group left half-made
        }
        finally
        {
            squatter.Kill();
            await squatter.WaitForExitAsync();
        }
    }
}
