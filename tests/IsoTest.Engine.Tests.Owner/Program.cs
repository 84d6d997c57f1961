using IsoTest;
using IsoTest.Docker;
using IsoTest.Engine;

// Starts N capped containers that would run for a long time, says so, then waits to be killed
// (kill -9) by a leak test. Usage: owner [count] [engine|docker]
int count = args.Length > 0 ? int.Parse(args[0]) : 3;
bool docker = args.Length > 1 && args[1] == "docker";
IContainerBackend backend = docker ? DockerBackend.Create() : new EngineBackend();
var ids = new List<string>();
for (int i = 0; i < count; i++)
{
    var container = await backend.CreateAsync(new ContainerSpec
    {
        RootFileSystem = docker ? RootFileSystem.FromImage("isotest/busybox:latest") : RootFileSystem.Host,
        Command = ["/bin/sh", "-c", "sleep 1000 & sleep 1000"],
        Limits = new ResourceLimits(MemoryBytes: 64L << 20, Pids: 16),
    });
    await container.StartAsync();
    ids.Add(container.Id);
}

// The engine's id names its cgroups and state; Docker's containers are named by their ids.
Console.WriteLine($"ready {(backend is EngineBackend engine ? engine.EngineId : string.Join(',', ids))}");
await Task.Delay(Timeout.Infinite);
