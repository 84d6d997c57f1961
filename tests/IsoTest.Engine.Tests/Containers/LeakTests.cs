using System.Diagnostics;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Containers;

/// <summary>Nothing leaks: not after a normal teardown, not after the owner is killed with kill -9.</summary>
/// <remarks>Serial: it counts this process's agents, which other test classes would add to.</remarks>
[Collection(SerialCollection.Name)]
public sealed class LeakTests
{
    [Fact]
    public async Task Teardown_NoProcessCgroupOrStateDirectoryRemains()
    {
        var engine = new EngineBackend();
        var stateDirectory = engine.StateDirectory;
        var containers = new List<IContainer>();
        for (int i = 0; i < 3; i++)
        {
            var container = await engine.CreateAsync(Specs.Shell("sleep 1000 & sleep 1000") with
            {
                Limits = new ResourceLimits(MemoryBytes: 64L << 20, Pids: 16),
            });
            await container.StartAsync();
            containers.Add(container);
        }

        var agents = Leaks.AgentProcessesOf(Environment.ProcessId);
        Assert.Equal(3, agents.Count); // one shim per container, children of this process's spawner
        Assert.NotEmpty(Leaks.ContainerCgroups(engine.EngineId)); // caps were requested, so cgroups exist

        foreach (var container in containers)
        {
            await container.DisposeAsync();
        }

        await Leaks.AllGoneAsync(agents);
        Assert.All(agents, pid => Assert.False(Leaks.IsAlive(pid), $"agent {pid} survived its container"));
        Assert.Empty(Leaks.ContainerCgroups(engine.EngineId));

        await engine.DisposeAsync();
        Assert.False(Directory.Exists(stateDirectory));
    }

    [Fact]
    public async Task EngineDispose_RemovesContainersTheTestForgot()
    {
        var engine = new EngineBackend();
        var forgotten = await engine.CreateAsync(Specs.Host("sleep", "1000") with { Limits = new ResourceLimits(Pids: 8) });
        await forgotten.StartAsync();

        await engine.DisposeAsync();

        Assert.Equal(ContainerState.Removed, forgotten.State);
        Assert.Empty(Leaks.AgentProcessesOf(Environment.ProcessId));
        Assert.Empty(Leaks.ContainerCgroups(engine.EngineId));
    }

    [Fact]
    public async Task OwnerKilledWithSigkill_ContainersDieAndTheNextEngineSweepsTheRest()
    {
        var ownerDll = Path.Combine(AppContext.BaseDirectory.Replace("IsoTest.Engine.Tests", "IsoTest.Engine.Tests.Owner", StringComparison.Ordinal), "IsoTest.Engine.Tests.Owner.dll");
        var start = new ProcessStartInfo("dotnet", [ownerDll, "3"]) { RedirectStandardOutput = true };
        using var owner = System.Diagnostics.Process.Start(start)!;
        string? ready;
        try
        {
            ready = await owner.StandardOutput.ReadLineAsync().WaitAsync(Specs.Timeout(TimeSpan.FromSeconds(60)));
        }
        catch (TimeoutException)
        {
            owner.Kill(); // the test failed; its owner and containers must not outlive it
            throw;
        }

        Assert.StartsWith("ready ", ready);
        var engineId = ready!["ready ".Length..];

        var spawners = Leaks.SpawnersOf(owner.Id);
        var shims = Leaks.AgentProcessesOf(owner.Id);
        Assert.Single(spawners);
        Assert.Equal(3, shims.Count);
        // Rootless with ranges the engine's makers (RootFs/HostMirrors.cs, Networking/UserNetnsPools.cs) must die with the owner too.
        var everything = spawners.Concat(shims.SelectMany(Descendants)).Concat(Leaks.AgentProcessesOf(owner.Id, "isotest-mirror"))
            .Concat(Leaks.AgentProcessesOf(owner.Id, Networking.NetnsPoolTests.UserNetnsMaker)).ToList();
        Assert.True(everything.Count >= 1 + (3 * 4), $"expected the spawner, and shim, init and two sleeps per container, saw {everything.Count}");
        Assert.NotEmpty(Leaks.ContainerCgroups(engineId));

        owner.Kill(); // SIGKILL: no managed clean-up runs
        await owner.WaitForExitAsync();

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (everything.Any(Leaks.IsAlive) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.All(everything, pid => Assert.False(Leaks.IsAlive(pid), $"pid {pid} outlived its killed owner"));

        // The dead engine's cgroups and state stay until the next engine starts, which sweeps them.
        await using var next = new EngineBackend();
        Assert.Empty(Leaks.ContainerCgroups(engineId));
        Assert.False(Directory.Exists(Path.Combine(Path.GetDirectoryName(next.StateDirectory)!, engineId)));
    }

    [Fact]
    public async Task Sweep_LiveEngineWithAnotherStateRoot_IsLeftAlone()
    {
        // Another user's engine keeps its state elsewhere ($XDG_RUNTIME_DIR): having no state directory
        // in our root does not make it dead, so its containers must survive our start.
        // An exited container's group has no process in it: only the engine's hold on its groups tells the sweep
        // that they are not what a dead engine left.
        await using var other = new EngineBackend();
        await using var container = await other.CreateAsync(Specs.Host("sleep", "30") with { Limits = new ResourceLimits(Pids: 8) });
        await container.StartAsync();
        await using var exited = await other.CreateAsync(Specs.Host("true") with { Limits = new ResourceLimits(Pids: 8) });
        await exited.StartAsync();
        Assert.Equal(0, await exited.WaitForExitAsync());
        var groups = Leaks.ContainerCgroups(other.EngineId);
        var elsewhere = Directory.CreateTempSubdirectory("isotest-state-");
        try
        {
            await using var next = new EngineBackend(null, elsewhere.FullName, null);

            Assert.Equal(ContainerState.Running, container.State);
            Assert.Equal(groups, Leaks.ContainerCgroups(other.EngineId));
            Assert.Contains(groups, g => g.EndsWith("/" + exited.Id, StringComparison.Ordinal));
        }
        finally
        {
            // An empty state root directly in /tmp goes with its last engine (EngineState), so it may be gone already.
            elsewhere.Refresh();
            if (elsewhere.Exists)
            {
                elsewhere.Delete(recursive: true);
            }
        }
    }

    [Fact]
    public async Task Sweep_GroupsOfAnEngineNobodyHolds_GoWhenEmpty_StayWithAProcessInThem_OthersGroupsStay()
    {
        // What an engine leaves when a group's rmdir gave up at teardown (its processes still dying) and the engine
        // then ended: groups with no state directory anywhere and no engine holding them. The next engine removes
        // the empty ones; one that still holds a process stays, the process untouched.
        var empty = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 4));
        var busy = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 4));
        var emptyDirs = Leaks.EngineGroupDirs(empty).Select(d => Directory.CreateDirectory(Path.Combine(d, "c1")).FullName).ToList();
        var busyDirs = Leaks.EngineGroupDirs(busy).Select(d => Directory.CreateDirectory(Path.Combine(d, "c2")).FullName).ToList();

        // An empty group someone else made under a shared parent (a slice, a test's scratch group) is not an engine's.
        var foreignDirs = Leaks.EngineGroupDirs($"scratch-{empty}").Select(d => Directory.CreateDirectory(d).FullName).ToList();
        using var squatter = System.Diagnostics.Process.Start("sleep", "1000");
        try
        {
            foreach (var dir in busyDirs)
            {
                await File.WriteAllTextAsync(Path.Combine(dir, "cgroup.procs"), squatter.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            await using var next = new EngineBackend();

            Assert.All(emptyDirs, dir => Assert.False(Directory.Exists(Path.GetDirectoryName(dir)), $"{dir} was not swept"));
            Assert.All(busyDirs, dir => Assert.True(Directory.Exists(dir), $"{dir} was swept with a process in it"));
            Assert.All(foreignDirs, dir => Assert.True(Directory.Exists(dir), $"{dir} is not an engine's group, yet it was swept"));
            Assert.False(squatter.HasExited);
        }
        finally
        {
            squatter.Kill();
            await squatter.WaitForExitAsync();
            foreach (var dir in emptyDirs.Concat(busyDirs))
            {
                RemoveWhenEmpty(dir);
                RemoveWhenEmpty(Path.GetDirectoryName(dir)!);
            }

            foreignDirs.ForEach(RemoveWhenEmpty);
        }
    }

    /// <summary>rmdir once the dying tasks have left (EBUSY until then); gone already is fine.</summary>
    private static void RemoveWhenEmpty(string dir)
    {
        for (var attempt = 0; Directory.Exists(dir); attempt++)
        {
            try
            {
                Directory.Delete(dir);
            }
            catch (IOException) when (attempt < 500)
            {
                Thread.Sleep(10);
            }
        }
    }

    private static IEnumerable<int> Descendants(int pid)
    {
        yield return pid;
        var children = $"/proc/{pid}/task/{pid}/children";
        if (!File.Exists(children))
        {
            yield break;
        }

        foreach (var child in File.ReadAllText(children).Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse))
        {
            foreach (var d in Descendants(child))
            {
                yield return d;
            }
        }
    }
}
