using IsoTest.Docker;
using Xunit;

namespace IsoTest.Tests.Docker;

public sealed class DockerEndpointTests
{
    [Theory]
    [InlineData("unix:///var/run/docker.sock", "unix:///var/run/docker.sock")]
    [InlineData("unix:///run/user/1001/docker.sock", "unix:///run/user/1001/docker.sock")]
    [InlineData("tcp://10.0.0.5", "tcp://10.0.0.5:2375/")]
    [InlineData("tcp://docker.internal:2376", "tcp://docker.internal:2376/")]
    [InlineData(" tcp://127.0.0.1:2375 ", "tcp://127.0.0.1:2375/")]
    public void Parse_DockerHost_Endpoint(string dockerHost, string expected)
    {
        Assert.Equal(new Uri(expected), DockerEndpoint.Parse(dockerHost));
    }

    [Theory]
    [InlineData("ssh://user@host")]
    [InlineData("npipe:////./pipe/docker_engine")]
    [InlineData("not a uri")]
    [InlineData("unix://")]
    public void Parse_Unsupported_ExplainsWhatWorks(string dockerHost)
    {
        var e = Assert.Throws<BackendUnavailableException>(() => DockerEndpoint.Parse(dockerHost));
        Assert.Contains("DOCKER_HOST", e.Message);
        Assert.Contains("unix://", e.Message);
    }

    [Fact]
    public void Resolve_DockerHostSet_WinsOverSockets()
    {
        var env = new Dictionary<string, string> { ["DOCKER_HOST"] = "tcp://remote:2375", ["XDG_RUNTIME_DIR"] = "/run/user/1001" };
        var uri = DockerEndpoint.Resolve(k => env.GetValueOrDefault(k), _ => true).Endpoint;
        Assert.Equal(new Uri("tcp://remote:2375"), uri);
        Assert.False(DockerEndpoint.IsLocal(uri));
        Assert.Equal("remote", DockerEndpoint.PublishedHost(uri));
    }

    [Fact]
    public void Resolve_NoDockerHost_SystemSocketFirstThenRootless()
    {
        var env = new Dictionary<string, string> { ["XDG_RUNTIME_DIR"] = "/run/user/1001" };
        Assert.Equal(new Uri("unix:///var/run/docker.sock"), DockerEndpoint.Resolve(k => env.GetValueOrDefault(k), _ => true).Endpoint);
        Assert.Equal(new Uri("unix:///run/user/1001/docker.sock"), DockerEndpoint.Resolve(k => env.GetValueOrDefault(k), p => p == "/run/user/1001/docker.sock").Endpoint);
        // Nothing found: the system socket, so the connection error names the usual place.
        Assert.Equal(new Uri("unix:///var/run/docker.sock"), DockerEndpoint.Resolve(k => env.GetValueOrDefault(k), _ => false).Endpoint);
    }

    [Fact]
    public void Tls_DockerTlsVerify_LikeTheDockerCli()
    {
        // Any value turns it on (the docker CLI tests for non-empty); the port defaults to 2376.
        var env = new Dictionary<string, string> { ["DOCKER_HOST"] = "tcp://daemon", ["DOCKER_TLS_VERIFY"] = "1", ["DOCKER_CERT_PATH"] = "/certs/client", ["HOME"] = "/home/ci" };
        Assert.Equal("/certs/client", DockerEndpoint.TlsDirectory(k => env.GetValueOrDefault(k)));
        Assert.Equal(new Uri("tcp://daemon:2376"), DockerEndpoint.Resolve(k => env.GetValueOrDefault(k), _ => false).Endpoint);

        env.Remove("DOCKER_CERT_PATH");
        Assert.Equal("/home/ci/.docker", DockerEndpoint.TlsDirectory(k => env.GetValueOrDefault(k)));

        env.Remove("DOCKER_TLS_VERIFY");
        Assert.Null(DockerEndpoint.TlsDirectory(k => env.GetValueOrDefault(k)));
        Assert.Equal(new Uri("tcp://daemon:2375"), DockerEndpoint.Resolve(k => env.GetValueOrDefault(k), _ => false).Endpoint);
    }

    [Fact]
    public void IsLocal_UnixAndLoopback_PublishOnLoopback()
    {
        Assert.Equal("127.0.0.1", DockerEndpoint.PublishedHost(new Uri("unix:///var/run/docker.sock")));
        Assert.Equal("127.0.0.1", DockerEndpoint.PublishedHost(new Uri("tcp://127.0.0.1:2375")));
    }

    [Theory]
    [InlineData("1.41", "1.41")]
    [InlineData("1.51", "1.51")]
    [InlineData("1.99", "1.51")]
    [InlineData(null, "1.51")]
    public void NegotiateVersion_MinOfDaemonAndClient(string? daemon, string expected)
    {
        Assert.Equal(Version.Parse(expected), DockerBackend.NegotiateVersion(daemon));
    }

    [Theory]
    [InlineData("busybox", "docker.io/library/busybox", "latest")]
    [InlineData("busybox:1.36", "docker.io/library/busybox", "1.36")]
    [InlineData("registry:5000/team/app", "registry:5000/team/app", "latest")]
    [InlineData("registry:5000/team/app:2", "registry:5000/team/app", "2")]
    [InlineData("app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "docker.io/library/app", "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public void SplitReference_NameAndTag(string reference, string name, string tag)
    {
        Assert.Equal((name, tag), DockerImages.SplitReference(reference));
    }

    [Fact]
    public void LogTimestamp_NanosecondPrefix_Parsed()
    {
        var (stamp, text) = DockerLogBuffer.SplitTimestamp("2024-05-06T07:08:09.123456789Z hello world");
        Assert.Equal(new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero).AddTicks(1234567), stamp);
        Assert.Equal("hello world", text);
        Assert.Equal((null, "no stamp here"), DockerLogBuffer.SplitTimestamp("no stamp here"));
    }

    [Fact]
    public void IsListening_ProcNetTcp_FindsListenState()
    {
        const string table = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
               1: 0100007F:0016 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
            """;
        Assert.True(DockerContainer.IsListening(table, 8080));
        Assert.False(DockerContainer.IsListening(table, 22)); // established, not listening
        Assert.False(DockerContainer.IsListening(table, 5432));
    }
}
