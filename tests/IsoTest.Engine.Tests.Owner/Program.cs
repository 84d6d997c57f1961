using IsoTest;
using IsoTest.Engine;

// Starts N capped containers that would run for a long time, says so, then waits to be killed.
int count = args.Length > 0 ? int.Parse(args[0]) : 3;
var engine = new EngineBackend();
for (int i = 0; i < count; i++)
{
    var container = await engine.CreateAsync(new ContainerSpec
    {
        RootFileSystem = RootFileSystem.Host,
        Command = ["/bin/sh", "-c", "sleep 1000 & sleep 1000"],
        Limits = new ResourceLimits(MemoryBytes: 64L << 20, Pids: 16),
    });
    await container.StartAsync();
}

Console.WriteLine($"ready {engine.EngineId}");
await Task.Delay(Timeout.Infinite);
