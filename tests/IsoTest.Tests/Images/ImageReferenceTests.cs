using Xunit;

namespace IsoTest.Tests.Images;

public class ImageReferenceTests
{
    private const string Sha = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("postgres", "docker.io", "library/postgres", "latest", null, "docker.io/library/postgres:latest")]
    [InlineData("postgres:16", "docker.io", "library/postgres", "16", null, "docker.io/library/postgres:16")]
    [InlineData("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", null, "docker.io/bitnami/redis:7.2")]
    [InlineData("docker.io/postgres", "docker.io", "library/postgres", "latest", null, "docker.io/library/postgres:latest")]
    [InlineData("index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", null, "docker.io/library/busybox:1")]
    [InlineData("localhost/app", "localhost", "app", "latest", null, "localhost/app:latest")]
    [InlineData("localhost:5000/team/app:2", "localhost:5000", "team/app", "2", null, "localhost:5000/team/app:2")]
    [InlineData("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", null, "127.0.0.1:5000/app:latest")]
    [InlineData("ghcr.io/owner/a/b/c:v1.0-rc_1", "ghcr.io", "owner/a/b/c", "v1.0-rc_1", null, "ghcr.io/owner/a/b/c:v1.0-rc_1")]
    [InlineData("Registry/app", "Registry", "app", "latest", null, "Registry/app:latest")]
    [InlineData("[::1]:5000/app:1", "[::1]:5000", "app", "1", null, "[::1]:5000/app:1")]
    [InlineData("a__b-c---d/e_f.g", "docker.io", "a__b-c---d/e_f.g", "latest", null, "docker.io/a__b-c---d/e_f.g:latest")]
    [InlineData("busybox@" + Sha, "docker.io", "library/busybox", null, Sha, "docker.io/library/busybox@" + Sha)]
    [InlineData("busybox:1.36@" + Sha, "docker.io", "library/busybox", "1.36", Sha, "docker.io/library/busybox:1.36@" + Sha)]
    [InlineData("localhost:5000/app@" + Sha, "localhost:5000", "app", null, Sha, "localhost:5000/app@" + Sha)]
    public void Parse_NormalisesLikeDocker(string input, string registry, string repository, string? tag, string? digest, string full)
    {
        var r = ImageReference.Parse(input);
        Assert.Equal(registry, r.Registry);
        Assert.Equal(repository, r.Repository);
        Assert.Equal(tag, r.Tag);
        Assert.Equal(digest, r.Digest);
        Assert.Equal(full, r.ToString());
        Assert.Equal(digest ?? tag, r.ManifestReference);
        Assert.Equal(r, ImageReference.Parse(r.ToString()));
    }

    [Theory]
    [InlineData("postgres", "postgres:latest")]
    [InlineData("docker.io/library/postgres:16", "postgres:16")]
    [InlineData("bitnami/redis", "bitnami/redis:latest")]
    [InlineData("localhost:5000/app:1", "localhost:5000/app:1")]
    public void ToFamiliarString_IsWhatTheDockerCliPrints(string input, string familiar)
    {
        Assert.Equal(familiar, ImageReference.Parse(input).ToFamiliarString());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("Postgres", "lowercase")]
    [InlineData("docker.io/Library/x", "lowercase")]
    [InlineData("busy box", "path component")]
    [InlineData("a//b", "path component")]
    [InlineData("-a", "path component")]
    [InlineData("a-", "path component")]
    [InlineData("a..b", "path component")]
    [InlineData("a___b", "path component")]
    [InlineData("app:", "tag")]
    [InlineData("app:-x", "tag")]
    [InlineData("app:.x", "tag")]
    [InlineData("app:a/b", "registry")]
    [InlineData("app@sha256:abc", "digest")]
    [InlineData("app@md5", "digest")]
    [InlineData("app@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "digest")]
    [InlineData("host:port/app", "registry")]
    [InlineData("host:99999999/app", "registry")]
    [InlineData(":tag", "repository")]
    [InlineData("-bad.host:5000/app", "registry")]
    public void Parse_RejectsWithTheReason(string input, string reason)
    {
        Assert.False(ImageReference.TryParse(input, out _));
        var e = Assert.Throws<ArgumentException>(() => ImageReference.Parse(input));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_TagOf129_IsRejected_128_Accepted()
    {
        Assert.True(ImageReference.TryParse("app:" + new string('a', 128), out _));
        Assert.False(ImageReference.TryParse("app:" + new string('a', 129), out _));
    }

    [Fact]
    public void Parse_NameOver255_IsRejected()
    {
        Assert.False(ImageReference.TryParse("r.io/" + new string('a', 251), out _));
        Assert.True(ImageReference.TryParse("r.io/" + new string('a', 250), out _));
    }
}
