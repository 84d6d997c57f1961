using System.Net;
using System.Net.Sockets;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Containers;

/// <summary>Each property is checked on the real kernel, so breaking it fails a test.</summary>
public sealed class IsolationTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    [Fact]
    public async Task Pid_OnlyTheContainersProcessesAreVisible()
    {
        var result = await _engine.RunAsync(Specs.Shell("ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '"));

        Assert.Equal(0, result.ExitCode);
        // PID 1 is the init agent, 2 the shell; the listing commands are its children. No host process.
        var pids = result.Stdout.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();
        Assert.Equal(1, pids[0]);
        Assert.All(pids, pid => Assert.True(pid < 10, $"pid {pid} visible: host processes leak into the container ({result.Stdout})"));
    }

    [Fact]
    public async Task Dev_HoldsOnlyTheHarmlessDevicesAndTheyWork()
    {
        // As root the nodes are made with mknod, rootless they are the host's bound in: the same either way.
        var result = await _engine.RunAsync(Specs.Shell(
            "for n in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$n; done; " +
            "echo gone > /dev/null && head -c 2 /dev/zero | od -An -tx1; head -c 16 /dev/urandom | wc -c; " +
            "/usr/bin/printf x > /dev/full 2>/dev/null || echo full; echo $(ls /dev)"));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(
            """
            /dev/null character special file 1:3 666
            /dev/zero character special file 1:5 666
            /dev/full character special file 1:7 666
            /dev/random character special file 1:8 666
            /dev/urandom character special file 1:9 666
            /dev/tty character special file 5:0 666
             00 00
            16
            full
            fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero

            """.ReplaceLineEndings("\n"),
            result.Stdout);
    }

    [Fact]
    public async Task Pid_PayloadIsNotPidOneAndInitReaps()
    {
        var result = await _engine.RunAsync(Specs.Shell("echo $$; (sleep 0 &); sleep 0.1; ps -o stat= 2>/dev/null | grep -c Z || true"));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("2", result.Stdout.Split('\n')[0]);
    }

    [Fact]
    public async Task Uts_HostnameIsTheContainersOwn()
    {
        var result = await _engine.RunAsync(Specs.Shell("hostname") with { Hostname = "box-under-test" });

        Assert.Equal("box-under-test\n", result.Stdout);
        Assert.NotEqual("box-under-test", Dns.GetHostName());
    }

    [Fact]
    public async Task Uts_DefaultHostnameIsDerivedFromTheId()
    {
        await using var container = await _engine.CreateAsync(Specs.Shell("hostname"));
        await container.StartAsync();
        await container.WaitForExitAsync();
        var hostname = string.Concat(await CollectAsync(container));

        Assert.Equal(container.Id[..12], hostname);
    }

    [Fact]
    public async Task Network_HostLoopbackListenerIsUnreachable()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var probe = $"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected || echo refused";

        var isolated = await _engine.RunAsync(Specs.Host("/bin/bash", "-c", probe));
        var shared = await _engine.RunAsync(Specs.Host("/bin/bash", "-c", probe) with { Network = Network.Host });

        Assert.Equal("refused\n", isolated.Stdout);
        Assert.Equal("connected\n", shared.Stdout); // the control: the probe does work when networks are shared
    }

    [Fact]
    public async Task Network_OnlyLoopbackExistsAndIsUp()
    {
        var result = await _engine.RunAsync(Specs.Shell("echo $(ls /sys/class/net); cat /sys/class/net/lo/flags"));

        var lines = result.Stdout.Split('\n');
        Assert.Equal("lo", lines[0]);
        // IFF_UP is bit 0 of the flags.
        Assert.Equal(1, Convert.ToInt32(lines[1], 16) & 1);
    }

    [Fact]
    public async Task RootFs_HostFilesystemIsNotWritable()
    {
        var marker = $"/usr/isotest-probe-{Guid.NewGuid():N}";
        var result = await _engine.RunAsync(Specs.Shell($"echo inside > {marker} && cat {marker}"));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("inside\n", result.Stdout); // the container writes to its private overlay...
        Assert.False(File.Exists(marker));        // ...and the host never sees it
    }

    [Fact]
    public async Task RootFs_ReadOnlyRootRefusesWrites()
    {
        var result = await _engine.RunAsync(Specs.Shell("touch /etc/isotest-probe 2>&1; echo rc=$?") with { ReadOnlyRootFileSystem = true });

        Assert.Contains("Read-only file system", result.Stdout);
        Assert.Contains("rc=1", result.Stdout);
    }

    [Fact]
    public async Task RootFs_TmpIsPrivateAndEmpty()
    {
        var hostMarker = Path.Combine("/tmp", $"isotest-host-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(hostMarker, "x");
        try
        {
            var result = await _engine.RunAsync(Specs.Shell($"test -e {hostMarker} && echo visible || echo hidden; touch /tmp/inside"));

            Assert.Equal("hidden\n", result.Stdout);
            Assert.False(File.Exists("/tmp/inside"));
        }
        finally
        {
            File.Delete(hostMarker);
        }
    }

    /// <summary>
    /// The agent starts init and each payload on its parent's CPU and then gives them their mask back (exec.c,
    /// pin_here/unpin). If the second half failed, a container would stay on one CPU: on a machine of two or more
    /// CPUs its processes would show a single one here. Init unpins itself only once its vfork of the payload has
    /// returned, so the payload can run before init does and see init still pinned for a moment (seen once in CI):
    /// the payload waits up to 2 s for init's mask to widen, and a missing unpin still fails.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData("nobody")]
    public async Task Cpus_InitAndThePayloadMayRunOnEveryCpuTheEngineMay(string? user)
    {
        var engineCpus = CpusAllowed(await File.ReadAllTextAsync("/proc/self/status"));
        var waitForInit = $"i=0; while [ $i -lt 200 ] && ! grep -q 'Cpus_allowed_list:.{engineCpus}$' /proc/1/status; do sleep 0.01; i=$((i+1)); done";
        var result = await _engine.RunAsync(Specs.Shell($"{waitForInit}; grep Cpus_allowed_list /proc/1/status /proc/self/status") with { User = user });

        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.All(lines, line => Assert.EndsWith("\t" + engineCpus, line));
    }

    private static string CpusAllowed(string status) =>
        status.Split('\n').Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split('\t')[1];

    [Fact]
    public async Task Capabilities_ReducedToDockersDefaultSetWithNoNewPrivs()
    {
        var result = await _engine.RunAsync(Specs.Shell("grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status"));

        // Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
        // NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP = 0x00000000a80425fb.
        Assert.Contains("CapEff:\t00000000a80425fb", result.Stdout);
        Assert.Contains("CapBnd:\t00000000a80425fb", result.Stdout);
        Assert.Contains("NoNewPrivs:\t1", result.Stdout);
    }

    [Fact]
    public async Task Capabilities_PrivilegedOperationIsRefused()
    {
        // Mounting needs CAP_SYS_ADMIN, which the default set does not have.
        var result = await _engine.RunAsync(Specs.Shell("mount -t tmpfs none /mnt 2>&1; echo rc=$?"));

        Assert.DoesNotContain("rc=0", result.Stdout);
    }

    [Fact]
    public async Task Ipc_SharedMemoryIsPrivate()
    {
        var result = await _engine.RunAsync(Specs.Shell("cat /proc/sysvipc/shm | wc -l"));

        Assert.Equal("1\n", result.Stdout); // only the header line: no host segments
    }

    private static async Task<List<string>> CollectAsync(IContainer container)
    {
        var lines = new List<string>();
        await foreach (var line in container.FollowLogsAsync())
        {
            lines.Add(line.Text);
        }

        return lines;
    }
}
