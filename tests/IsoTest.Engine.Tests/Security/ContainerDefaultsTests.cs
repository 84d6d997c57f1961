using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// Issue 8, findings 8 and 10 and the nodev part of 1: what a container gets by default where Docker's
/// defaults differ from what the engine passed through — resource limits, /dev/mqueue, bounded tmpfs
/// for the writable layer, /tmp and /run, and no device nodes on the writable layers.
/// </summary>
public sealed class ContainerDefaultsTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    [Fact]
    public async Task OpenFiles_DockersDefaultNotTheEngines()
    {
        // .NET raises its own soft limit to the hard one; Docker's containers start at 1024:524288
        // (systemd's default for the daemon), the hard limit capped by what the engine itself has.
        var engineHard = File.ReadLines("/proc/self/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[4];
        var expectedHard = engineHard == "unlimited" ? 524288 : Math.Min(524288, long.Parse(engineHard));

        var result = await _engine.RunAsync(Specs.Shell("ulimit -Sn; ulimit -Hn"));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal($"{Math.Min(1024, expectedHard)}\n{expectedHard}\n", result.Stdout);
    }

    [Fact]
    public async Task Mqueue_MountedAtDevMqueueForTheContainersIpcNamespace()
    {
        // mq_open through ctypes: the queue appears in /dev/mqueue only if that is this IPC namespace's mqueue.
        const string probe = """
            import ctypes, os
            rt = ctypes.CDLL("librt.so.1", use_errno=True)
            fd = rt.mq_open(b"/isotest-probe", os.O_CREAT | os.O_RDWR, 0o600, None)
            print("mq_open", fd >= 0)
            print(sorted(os.listdir("/dev/mqueue")))
            """;
        var result = await _engine.RunAsync(Specs.Shell($"stat -f -c %T /dev/mqueue; grep ' /dev/mqueue ' /proc/self/mounts | cut -d' ' -f4; /usr/bin/python3 -c '{probe}'"));

        Assert.Equal(0, result.ExitCode);
        var lines = result.Stdout.Split('\n');
        Assert.Equal("mqueue", lines[0]);
        Assert.Contains("nosuid", lines[1]);
        Assert.Contains("nodev", lines[1]);
        Assert.Contains("noexec", lines[1]);
        Assert.Equal("mq_open True", lines[2]);
        Assert.Equal("['isotest-probe']", lines[3]);
    }

    [Fact]
    public async Task Tmpfs_SizesHaveDefaultCaps()
    {
        var result = await _engine.RunAsync(Specs.Shell("for d in / /tmp /run; do stat -f -c '%b %S' $d; done"));

        Assert.Equal(0, result.ExitCode);
        var sizes = Sizes(result.Stdout);
        Assert.Equal([1L << 30, 1L << 30, 64L << 20], sizes);
    }

    [Fact]
    public async Task Tmpfs_SizesFollowTheMemoryCap_WritingPastThemIsEnospcNotOom()
    {
        var spec = Specs.Shell("for d in / /tmp /run; do stat -f -c '%b %S' $d; done; " +
                               "head -c 40m /dev/zero > /tmp/fill 2>/dev/null || echo tmp-full; rm -f /tmp/fill; " +
                               "head -c 40m /dev/zero > /fill 2>/dev/null || echo layer-full")
            with { Limits = new ResourceLimits(MemoryBytes: 64L << 20) };

        var result = await _engine.RunAsync(spec);

        Assert.Equal(0, result.ExitCode);
        Assert.False(result.OomKilled);
        Assert.Equal([32L << 20, 32L << 20, 32L << 20], Sizes(result.Stdout));
        Assert.Contains("tmp-full", result.Stdout);
        Assert.Contains("layer-full", result.Stdout);
    }

    [Fact]
    public async Task WritableLayers_DeviceNodesCannotBeOpened()
    {
        // c 1:3 is /dev/null, which the devices cgroup allows: only nodev stands between mknod and the
        // device. Rootless, mknod itself is refused; either way no node on a writable layer opens.
        var result = await _engine.RunAsync(Specs.Shell(
            "for d in / /tmp /run /var/tmp; do " +
            "  mknod $d/isotest-node c 1 3 2>/dev/null && { echo x > $d/isotest-node 2>/dev/null && echo \"opened $d\"; }; " +
            "done; echo done"));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("done\n", result.Stdout);
    }

    private static long[] Sizes(string stdout) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Take(3)
        .Select(l => l.Split(' ')).Select(p => long.Parse(p[0]) * long.Parse(p[1])).ToArray();
}
