namespace IsoTest.Cli.Tests;

/// <summary>
/// <c>isotest run</c> end to end: real containers on the real kernel through the command's entry point
/// (the built-in engine, in process), asserting what the user sees and the exit code.
/// Needs root (or a user namespace setup) and the engine: IsoTest.Engine's EngineBackend.
/// </summary>
public sealed class RunEndToEndTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-cli-e2e-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Exit, string Out, string Err)> RunAsync(params string[] args) => Cli.RunAsync(args);

    [Fact]
    public async Task Run_ShellCommand_StreamsOutputAndExitsWithItsCode()
    {
        var (exit, stdout, stderr) = await RunAsync("run", "host", "/bin/sh", "-c", "echo hi; echo oops >&2; exit 3");

        Assert.Equal(3, exit);
        Assert.Equal("hi\n", stdout);
        Assert.Equal("oops\n", stderr);
    }

    [Fact]
    public async Task Run_PublishFixedPort_ServesOnThatHostPortAndSaysSo()
    {
        int hostPort;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            hostPort = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }

        using var stop = new CancellationTokenSource();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var run = Program.RunAsync(["run", "-p", $"127.0.0.1:{hostPort}:8080", "host", "sh", "-c", "echo cli-port > /tmp/index.html; exec busybox httpd -f -p 8080 -h /tmp"],
            TextWriter.Synchronized(stdout), TextWriter.Synchronized(stderr), stopRequested: stop.Token);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        string? body = null;
        for (var attempt = 0; attempt < 300 && body is null && !run.IsCompleted; attempt++)
        {
            try
            {
                body = await http.GetStringAsync($"http://127.0.0.1:{hostPort}/index.html");
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100);
            }
        }

        stop.Cancel();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("cli-port\n", body);
        Assert.Contains($"isotest: 8080/tcp -> 127.0.0.1:{hostPort}\n", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_OverMemoryLimit_ReportsOomAndExits137()
    {
        var (exit, _, stderr) = await RunAsync("run", "--rm", "--name", "oom-cli-test", "-m", "16m", "host", "sh", "-c", "head -c 200m /dev/zero | tail");

        Assert.Equal(137, exit);
        Assert.Contains("isotest: container oom-cli-test was killed by the OOM killer (memory limit 16MiB)\n", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_MissingProgram_Exits127()
    {
        var (exit, _, stderr) = await RunAsync("run", "host", "/no/such/program");

        Assert.Equal(127, exit);
        Assert.Contains("/no/such/program", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_NotExecutable_Exits126()
    {
        var (exit, _, stderr) = await RunAsync("run", "host", "/etc/passwd");

        Assert.Equal(126, exit);
        Assert.Contains("/etc/passwd", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_Flags_ReachTheContainer()
    {
        var data = Path.Combine(_dir, "data");
        Directory.CreateDirectory(data);
        await File.WriteAllTextAsync(Path.Combine(data, "f"), "from host");

        var (exit, stdout, stderr) = await RunAsync(
            "run", "-e", "GREETING=hello", "-w", "/tmp", "-h", "clibox", "-v", $"{data}:/data:ro", "--tmpfs", "/scratch",
            "host", "sh", "-c",
            "echo \"$GREETING $(pwd) $(hostname) $(cat /data/f)\"; touch /data/x 2>/dev/null && echo data-writable; touch /scratch/y && echo scratch-writable");

        Assert.Equal("", stderr);
        Assert.Equal(0, exit);
        Assert.Equal("hello /tmp clibox from host\nscratch-writable\n", stdout);
        Assert.False(File.Exists(Path.Combine(data, "x")));
    }

    [Fact]
    public async Task Run_NetworkAndAlias_TheContainerIsOnANetworkMadeForTheRunUnderItsAlias()
    {
        var (exit, stdout, _) = await RunAsync("run", "--rm", "--network", "n1", "--network-alias", "db", "host", "sh", "-c", "getent hosts db | cut -f1 | cut -d' ' -f1; getent hosts host.isotest.internal >/dev/null && echo host; echo $(ls /sys/class/net)");

        Assert.Equal(0, exit);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("10.", lines[0]);
        Assert.Equal(["host", "eth0 lo"], lines[1..]);
    }

    [Fact]
    public async Task Run_DefaultNetwork_HasOnlyLoopback_HostNetworkSeesTheHost()
    {
        // /proc/net/dev lists the interfaces of the reader's network namespace: two header lines, then one per interface.
        const string CountInterfaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";
        var hostInterfaces = File.ReadAllLines("/proc/net/dev").Skip(2).Select(l => l.Split(':')[0].Trim()).Order().ToArray();

        var (privateExit, privateOut, _) = await RunAsync("run", "host", "sh", "-c", CountInterfaces);
        var (hostExit, hostOut, _) = await RunAsync("run", "--network", "host", "host", "sh", "-c", CountInterfaces);

        Assert.Equal(0, privateExit);
        Assert.Equal("lo\n", privateOut);
        Assert.Equal(0, hostExit);
        Assert.Equal(hostInterfaces, hostOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToArray());
    }

    [Fact]
    public async Task Run_DirectoryRootFs_RunsItsPrograms()
    {
        // A one-program root filesystem: busybox-static, which needs no libraries.
        var rootfs = Path.Combine(_dir, "rootfs");
        Directory.CreateDirectory(Path.Combine(rootfs, "bin"));
        foreach (var dir in new[] { "proc", "dev", "tmp", "sys", "etc" })
        {
            Directory.CreateDirectory(Path.Combine(rootfs, dir));
        }

        File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
        File.CreateSymbolicLink(Path.Combine(rootfs, "bin", "sh"), "busybox");

        var (exit, stdout, _) = await RunAsync("run", rootfs, "/bin/sh", "-c", "echo in-rootfs; [ -e /usr/bin/dotnet ] || echo no-host-files");

        Assert.Equal(0, exit);
        Assert.Equal("in-rootfs\nno-host-files\n", stdout);
    }

    [Fact]
    public async Task Run_StopRequested_StopsTheContainerAndReturnsItsCode()
    {
        using var stdout = new SignallingWriter("ready");
        using var stderr = new StringWriter();
        using var stop = new CancellationTokenSource();

        // What Main does on SIGINT/SIGTERM: cancel the stop token. The payload's TERM trap proves it got SIGTERM.
        var run = Program.RunAsync(
            ["run", "host", "sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 1; done"],
            stdout,
            stderr,
            stopRequested: stop.Token);
        // If the run ends before "ready" (it could not start), skip the stop and let the asserts say why.
        if (await Task.WhenAny(stdout.Seen, run) == stdout.Seen)
        {
            await stop.CancelAsync();
        }

        var exit = await run;
        Assert.Equal("", stderr.ToString());

        Assert.Equal(7, exit);
        Assert.Equal("ready\ngot-term\n", stdout.ToString());
    }

    /// <summary>Captures output and completes <see cref="Seen"/> once a line equal to the marker is written.</summary>
    private sealed class SignallingWriter(string marker) : StringWriter
    {
        private readonly TaskCompletionSource _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Seen => _seen.Task;

        public override Task WriteLineAsync(string? value)
        {
            var written = base.WriteLineAsync(value);
            if (value == marker)
            {
                _seen.TrySetResult();
            }

            return written;
        }
    }
}

/// <summary>
/// <c>isotest run IMAGE [COMMAND]</c>, <c>--entrypoint</c>, <c>--pull</c> and the image commands against the real Debian
/// image (.ci/images.sh), loaded into a store of the test's own.
/// </summary>
[Collection("CliImages")]
public sealed class ImageCommandTests : IDisposable
{
    private readonly string _store = Directory.CreateTempSubdirectory("isotest-cli-images-").FullName;
    private readonly string? _before = Environment.GetEnvironmentVariable("ISOTEST_IMAGE_STORE");

    public ImageCommandTests()
    {
        IsoTest.TestSupport.DebianImages.EnsureBuilt();
        Environment.SetEnvironmentVariable("ISOTEST_IMAGE_STORE", _store);
    }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("ISOTEST_IMAGE_STORE", _before);
        // Unpacked layers hold read-only directories; rm copes with them as every user.
        using var rm = System.Diagnostics.Process.Start("chmod", ["-R", "u+rwX", _store]);
        rm?.WaitForExit();
        Directory.Delete(_store, recursive: true);
    }

    private static Task<(int Exit, string Out, string Err)> RunAsync(params string[] args) => Cli.RunAsync(args);

    [Fact]
    public async Task LoadImagesRunWithEntrypointAndPullNever()
    {
        // Nothing in the store yet: --pull never says so, and names the image.
        var (missing, _, missingErr) = await RunAsync("run", "--pull", "never", IsoTest.TestSupport.DebianImages.Debian, "true");
        Assert.Equal(125, missing);
        Assert.Contains("isotest/debian:bookworm", missingErr, StringComparison.Ordinal);
        Assert.Contains("Never", missingErr, StringComparison.Ordinal);

        var (load, loadOut, loadErr) = await RunAsync("load", "-i", IsoTest.TestSupport.DebianImages.Layout);
        Assert.True(load == 0, loadErr);
        Assert.Contains("isotest/postgres:15-bookworm", loadOut, StringComparison.Ordinal);

        var (images, imagesOut, _) = await RunAsync("images");
        Assert.Equal(0, images);
        Assert.Contains("isotest/debian", imagesOut, StringComparison.Ordinal);

        // The image's CMD replaced by the command; then --entrypoint with its arguments.
        var (run, runOut, runErr) = await RunAsync("run", "--rm", "--pull", "never", IsoTest.TestSupport.DebianImages.Debian, "cat", "/etc/debian_version");
        Assert.True(run == 0, runErr);
        Assert.StartsWith("12.", runOut, StringComparison.Ordinal);
        var (entry, entryOut, entryErr) = await RunAsync("run", "--entrypoint", "/usr/bin/id", IsoTest.TestSupport.DebianImages.Postgres, "-un");
        Assert.True(entry == 0, entryErr);
        Assert.Equal("postgres\n", entryOut);

        var (bad, _, badErr) = await RunAsync("run", "--pull", "sometimes", IsoTest.TestSupport.DebianImages.Debian);
        Assert.Equal(125, bad);
        Assert.Contains("sometimes", badErr, StringComparison.Ordinal);

        var (rmi, _, rmiErr) = await RunAsync("rmi", IsoTest.TestSupport.DebianImages.Debian);
        Assert.True(rmi == 0, rmiErr);
        var (prune, _, pruneErr) = await RunAsync("image", "prune");
        Assert.True(prune == 0, pruneErr);
    }
}
