using IsoTest;
using IsoTest.Docker;
using IsoTest.Engine;

// "owner pull STORE REFERENCE [hang]": pulls into STORE and prints what it did (ImageStoreTests: many
// processes pulling one image; kill -9 in the middle of a pull, where "hang" stops it once bytes flow).
if (args.Length > 0 && args[0] == "pull")
{
    using var images = new IsoTest.Engine.Images.ImageService(new IsoTest.Engine.Images.ImageStore(args[1]), IsoTest.Engine.Images.DockerCredentials.None,
        new IsoTest.Engine.Images.RegistrySettings(new HashSet<string>(), []), new IsoTest.Engine.Images.Platform("amd64", "linux"));
    var hang = args.Length > 3 && args[3] == "hang";
    var counts = new Dictionary<ImagePullPhase, int>();
    var image = await images.PullAsync(args[2], new PullReport(counts, hang));
    lock (counts)
    {
        Console.WriteLine($"pulled {image.ManifestDigest} downloaded={counts.GetValueOrDefault(ImagePullPhase.Downloaded)} unpacked={counts.GetValueOrDefault(ImagePullPhase.Complete)}");
    }

    return;
}

// "owner run SCRIPT [unconfined]": runs `/bin/sh -c SCRIPT` in one engine container and then as an
// exec in a second one (without a seccomp filter when told: a probe of another defence must not be
// stopped by seccomp), printing what each wrote. The security tests start this from a process that
// left descriptors or a keyring behind, which the engine and its agent inherit (.NET opens its own
// files CLOEXEC).
if (args is ["run", var script, ..])
{
    await using var runner = new EngineBackend();
    var spec = new ContainerSpec
    {
        RootFileSystem = RootFileSystem.Host,
        Command = ["/bin/sh", "-c", script],
        Seccomp = args is [_, _, "unconfined"] ? SeccompProfile.Unconfined : SeccompProfile.Default,
    };
    await using (var payload = await runner.CreateAsync(spec))
    {
        await payload.StartAsync();
        var code = await payload.WaitForExitAsync();
        await foreach (var line in payload.FollowLogsAsync())
        {
            Console.WriteLine($"payload {line.Stream}: {line.Text}");
        }

        Console.WriteLine($"payload exit {code}");
    }

    await using (var host = await runner.CreateAsync(spec with { Command = ["sleep", "60"] }))
    {
        await host.StartAsync();
        var exec = await host.ExecAsync(["/bin/sh", "-c", script]);
        Console.Write(string.Concat(exec.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => $"exec Stdout: {l}\n")));
        Console.Write(string.Concat(exec.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => $"exec Stderr: {l}\n")));
        Console.WriteLine($"exec exit {exec.ExitCode}");
    }

    return;
}

// "owner network N [outbound]": a network (with its way out) and N containers on it; prints the engine id and the
// inodes of the network namespaces (the network's, then each member's), for an outbound one then the pid of its
// slirp4netns on a second line, then waits to be killed (kill -9) by a leak test.
if (args is ["network", var members, ..])
{
    var networked = new EngineBackend();
    bool outbound = args is [_, _, "outbound"];
    var network = (IsoTest.Engine.Networking.EngineNetwork)await new NetworkBuilder().WithOutboundAccess(outbound).WithBackend(networked).BuildAsync();
    var inodes = new List<string> { new FileInfo($"/proc/self/fd/{network.Namespace.DangerousGetHandle()}").LinkTarget! };
    for (int i = 0; i < int.Parse(members, System.Globalization.CultureInfo.InvariantCulture); i++)
    {
        var member = await networked.CreateAsync(new ContainerSpec
        {
            RootFileSystem = RootFileSystem.Host,
            Command = ["sleep", "1000"],
            Networks = [Network.Join(network)],
        });
        await member.StartAsync();
        var probe = await member.ExecAsync(["readlink", "/proc/self/ns/net"]);
        inodes.Add(probe.Stdout.Trim());
    }

    // As root the engine keeps namespaces ready on the network (veths plugged into its bridge): those go too.
    for (var deadline = DateTime.UtcNow.AddSeconds(30); Environment.UserName == "root" && network.ReadyNow.Count < IsoTest.Engine.Networking.EngineNetworks.ReadyPerNetwork && DateTime.UtcNow < deadline;)
    {
        await Task.Delay(10);
    }

    inodes.AddRange(network.ReadyNow.Select(r => new FileInfo($"/proc/self/fd/{r.Namespace.DangerousGetHandle()}").LinkTarget!));
    Console.WriteLine($"ready {networked.EngineId} {string.Join(' ', inodes)}");
    if (network.Outbound is { } way)
    {
        Console.WriteLine($"slirp4netns {way.Pid}");
    }

    await Task.Delay(Timeout.Infinite);
}

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

/// <summary>Counts phases; with hang, blocks the download (it reports synchronously) once its bytes flow.</summary>
internal sealed class PullReport(Dictionary<ImagePullPhase, int> counts, bool hang) : IProgress<ImagePullProgress>
{
    public void Report(ImagePullProgress value)
    {
        lock (counts)
        {
            counts[value.Phase] = counts.GetValueOrDefault(value.Phase) + 1;
        }

        if (hang && value.Phase == ImagePullPhase.Downloading && value.Current > 0)
        {
            Console.WriteLine("downloading");
            Console.Out.Flush();
            Thread.Sleep(Timeout.Infinite);
        }
    }
}
