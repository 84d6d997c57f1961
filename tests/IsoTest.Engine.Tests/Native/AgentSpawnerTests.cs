using IsoTest.Engine.Native;

namespace IsoTest.Engine.Tests.Native;

/// <summary>
/// The spawner forks every agent from a small descriptor table of its own (native/spawner.c): what the engine holds
/// (~3 descriptors per live container) is neither copied into nor closed by each new agent. A spawner of its own per
/// test, not the engine loop's, which every other test's containers depend on.
/// </summary>
public sealed class AgentSpawnerTests
{
    private static readonly string Agent = Path.Combine(AppContext.BaseDirectory, "isotest-init");

    [Fact]
    public async Task Spawn_CallerHoldsThousandsOfDescriptors_TheShimIsTheSpawnersChildWithOnlyItsOwn()
    {
        var held = Enumerable.Range(0, 1500).Select(_ => Fd.SeqPacketPair()).ToList();
        using var spawner = new AgentSpawner(Agent);
        using var devNull = Fd.OpenDevNull();
        var (engineEnd, agentEnd) = Fd.SeqPacketPair();
        try
        {
            int shim;
            using (agentEnd)
            {
                shim = spawner.Spawn([devNull, devNull, devNull, agentEnd]);
            }

            Assert.Equal(spawner.Pid, ParentOf(shim));
            Assert.Equal(["0", "1", "2", "3"], Fds(spawner.Pid));
            // The shim waits for its spec on fd 3; until it has closed what it was forked with, give it a moment.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!Fds(shim).SequenceEqual(["0", "1", "2", "3"]) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            Assert.Equal(["0", "1", "2", "3"], Fds(shim));

            engineEnd.Dispose(); // EOF before a spec: the shim exits, and the spawner reaps it (no zombie left)
            while (File.Exists($"/proc/{shim}/stat") && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            Assert.False(File.Exists($"/proc/{shim}/stat"), $"shim {shim} was not reaped");
        }
        finally
        {
            engineEnd.Dispose();
            held.ForEach(p => { p.A.Dispose(); p.B.Dispose(); });
        }
    }

    [Fact]
    public async Task Spawn_SpawnerWasKilled_ANewOneSpawns()
    {
        using var spawner = new AgentSpawner(Agent);
        using var devNull = Fd.OpenDevNull();
        var (first, firstAgent) = Fd.SeqPacketPair();
        using (first)
        using (firstAgent)
        {
            spawner.Spawn([devNull, devNull, devNull, firstAgent]);
        }

        var killed = spawner.Pid;
        Assert.Equal(0, Libc.kill(killed, Libc.SIGKILL));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!File.ReadAllText($"/proc/{killed}/stat").Contains(") Z ") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10); // until it is a zombie: its end of the request socket is closed then
        }

        var (second, secondAgent) = Fd.SeqPacketPair();
        using (second)
        using (secondAgent)
        {
            var shim = spawner.Spawn([devNull, devNull, devNull, secondAgent]);

            Assert.NotEqual(killed, spawner.Pid);
            Assert.Equal(spawner.Pid, ParentOf(shim));
        }

        Assert.False(File.Exists($"/proc/{killed}/stat"), "the killed spawner was not reaped");
    }

    private static int ParentOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
    }

    private static string[] Fds(int pid) =>
        [.. Directory.GetFileSystemEntries($"/proc/{pid}/fd").Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(f => f!)];
}
