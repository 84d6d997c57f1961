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
        // ancestor/a holds the engine (this process); ancestor/b is the engine's parent. Moving a task from a to
        // b/<engine>/<container> needs write access to cgroup.procs of ancestor, their common ancestor. Rootless that
        // is a group of root's above two of the user's, as the group above a systemd delegation is root's: the guest
        // (.ci/v2vm-guest) makes one and names it in ISOTEST_V2_FOREIGN_ANCESTOR. (A read-only group of the user's own
        // is no barrier: the shim joins the container's cgroups from the engine's user namespace, where the user's own
        // files yield to CAP_DAC_OVERRIDE; root's do not, as root is not mapped there.) Root may make the move anyway.
        var home = CgroupV2.CgroupOf(Environment.ProcessId);
        CgroupV2.Scratch? scratch = null;
        string ancestor;
        if (Specs.IsRoot)
        {
            scratch = CgroupV2.MakeScratch("v2-ancestor", "memory");
            scratch.Child("a");
            scratch.Child("b");
            ancestor = scratch.Dir;
        }
        else
        {
            ancestor = Environment.GetEnvironmentVariable("ISOTEST_V2_FOREIGN_ANCESTOR") ?? "";
            Assert.True(Directory.Exists(Path.Combine(ancestor, "a")) && Directory.Exists(Path.Combine(ancestor, "b")),
                "rootless, this test needs a group of root's holding two groups of this user's, a and b, named in ISOTEST_V2_FOREIGN_ANCESTOR (.ci/v2vm-guest makes one)");
            Assert.False(CanOpenForWriting(Path.Combine(ancestor, "cgroup.procs")), $"{ancestor}/cgroup.procs must not be this user's to write");
        }

        var a = Path.Combine(ancestor, "a");

        // Init is forked by the engine's spawner, which stays where the process was at its first container. This
        // process has started containers before, from home, so the test gives its engine an agent of its own path:
        // its spawner starts in a, as an engine started in a would.
        var agent = Path.Combine(Path.GetTempPath(), $"isotest-agent-{Guid.NewGuid():N}");
        File.Copy(AgentLocator.Find(), agent);

        // The test may move itself into a: the common ancestor of home and a is a group it may write (the delegated one).
        CgroupV2.Move(Environment.ProcessId, a);
        try
        {
            var noRanges = Path.Combine(Path.GetTempPath(), $"isotest-noranges-{Guid.NewGuid():N}");
            File.WriteAllText(noRanges, "");

            await using var engine = new EngineBackend(agent, null, new CgroupV2Driver(CgroupV2.Root, Path.GetRelativePath(CgroupV2.Root, ancestor) + "/b", CgroupFileSystem.Instance),
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
            Assert.Contains(ancestor + "/b/" + engine.EngineId, error.Message); // where the container was to go
            Assert.Contains("Delegate=yes", error.Message);            // and the fix
            var engineGroup = Path.Combine(ancestor, "b", engine.EngineId); // nothing half-made is left there
            Assert.Empty(Directory.Exists(engineGroup) ? Directory.GetDirectories(engineGroup) : []);
        }
        finally
        {
            CgroupV2.Move(Environment.ProcessId, home);
            await EngineLoop.Shared.RetireSpawnerAsync(agent); // it sits in a
            File.Delete(agent);
            scratch?.Dispose();
        }
    }

    private static bool CanOpenForWriting(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write); // opened only: nothing is written
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
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
