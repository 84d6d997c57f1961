using IsoTest.Engine.Networking;

namespace IsoTest.Engine.Tests.Networking;

public sealed class HostsFileTests
{
    [Fact]
    public void OutboundResolvConf_KeepsTheHostsServersSearchAndOptions_LeavesOutLoopbackOnes()
    {
        var host = "# comment\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\nnameserver fe80::1%eth0\nsearch corp.example\noptions edns0 trust-ad\n";

        var text = HostsFile.OutboundResolvConf(host);

        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')).ToList();
        Assert.Equal(["nameserver 10.255.255.53", "nameserver fe80::1%eth0", "search corp.example", "options edns0 trust-ad"], lines);
    }

    [Theory]
    [InlineData("nameserver 127.0.0.53\noptions edns0\n")]
    [InlineData("")]
    public void OutboundResolvConf_NoServerAMemberCanReach_IsThePlainFileWithTheReason(string host)
    {
        var text = HostsFile.OutboundResolvConf(host);

        Assert.DoesNotContain("nameserver", text);
        Assert.Contains("only loopback ones", text);
        Assert.EndsWith(HostsFile.ResolvConf, text);
    }
}
