using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Security;

/// <summary>What must still work under the hardening (seccomp, devices, capabilities), as real images need it.</summary>
public sealed class HardeningPositiveTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    [Fact]
    public async Task Ping_OfLoopback_WorksWithNetRaw()
    {
        // busybox ping opens a raw ICMP socket: CAP_NET_RAW (in Docker's default set) and socket(AF_INET, SOCK_RAW).
        var result = await _engine.RunAsync(Specs.Host("/bin/busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1"));

        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        Assert.Contains("1 packets received", result.Stdout);
    }

    [Fact]
    public async Task Chown_Inside_Works()
    {
        // Rootless maps only the caller's uid (0 inside): chown to 0 is what works there; as root any uid does.
        var to = Specs.IsRoot ? "1000:1000" : "0:0";
        var result = await _engine.RunAsync(Specs.Shell($"touch /tmp/f && chown {to} /tmp/f && stat -c %u:%g /tmp/f"));

        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(to + "\n", result.Stdout);
    }

    [Fact]
    public async Task Server_BindsAPrivilegedPort_AndServes()
    {
        // Port 80 needs CAP_NET_BIND_SERVICE; the connection comes through the engine's forwarder.
        var spec = Specs.Host("/usr/bin/python3", "-c", """
            import socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 80)); s.listen(1); print("listening", flush=True)
            c, _ = s.accept(); c.sendall(b"hello from 80\n"); c.close()
            """) with { Ports = [80] };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var container = await _engine.CreateAsync(spec, cts.Token);
        await container.StartAsync(cts.Token);
        while (!container.GetLogs().Any(l => l.Text == "listening"))
        {
            await Task.Delay(10, cts.Token);
        }

        var endpoint = container.GetEndpoint(80);
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(endpoint.Host, endpoint.Port, cts.Token);
        using var reader = new StreamReader(client.GetStream());
        Assert.Equal("hello from 80", await reader.ReadLineAsync(cts.Token));
        Assert.Equal(0, await container.WaitForExitAsync(cts.Token));
    }

    [Fact]
    public async Task Threads_ForkAndExec_WorkUnderTheDefaultFilter()
    {
        // clone3 is ENOSYS: glibc falls back to clone for threads and for posix_spawn.
        var result = await _engine.RunAsync(Specs.Host("/usr/bin/python3", "-c",
            "import threading, subprocess; t = threading.Thread(target=lambda: print('thread')); t.start(); t.join(); print(subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout.strip())"));

        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal("thread\nchild\n", result.Stdout);
    }
}
