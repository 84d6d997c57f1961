using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// Issue 8 finding 1, from inside a real container: a node made for a host device cannot be opened. As root the
/// devices cgroup (v1) or the device program (v2) refuses the open (mknod itself is allowed, as in Docker);
/// rootless the user namespace refuses the mknod. The harmless nodes keep working either way.
/// </summary>
public sealed class DeviceProbeTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    [Theory]
    [InlineData("b 7 0", "loop0")]
    [InlineData("b 1 0", "ram0")]
    [InlineData("c 1 1", "mem")]
    [InlineData("c 10 232", "kvm")]
    [InlineData("c 4 1", "tty1")]
    [InlineData("c 10 229", "fuse")]
    public async Task HostDevice_AfterMknod_CannotBeOpened(string node, string what)
    {
        var result = await _engine.RunAsync(Specs.Shell(
            $"mknod /tmp/x {node} 2>/dev/null && {{ echo made; (exec 3<>/tmp/x) 2>/dev/null && echo OPENED-RW; (exec 3</tmp/x) 2>/dev/null && echo OPENED-R; }}; [ -b /tmp/x ] || [ -c /tmp/x ] || echo no-node; echo done"));

        Assert.Equal(0, result.ExitCode);
        Assert.DoesNotContain("OPENED", result.Stdout, StringComparison.Ordinal);
        Assert.True((Specs.IsRoot ? "made\ndone\n" : "no-node\ndone\n") == result.Stdout, $"{what}: {result.Stdout}"); // rootless cannot even mknod
    }

    [Fact]
    public async Task AllowedDevices_StillWork()
    {
        var result = await _engine.RunAsync(Specs.Shell(
            "echo x > /dev/null && head -c 3 /dev/zero | wc -c && head -c 5 /dev/urandom | wc -c && { /usr/bin/printf x > /dev/full 2>/dev/null || echo full; }"));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("3\n5\nfull\n", result.Stdout);
    }
}
