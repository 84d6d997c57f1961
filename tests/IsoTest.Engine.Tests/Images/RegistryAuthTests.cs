using IsoTest.Engine.Images;
using IsoTest.TestSupport;

namespace IsoTest.Engine.Tests.Images;

/// <summary>
/// Registry auth against Debian's docker-registry: token auth (auth: token, with a token service this test runs on
/// loopback signing JWTs with a throwaway certificate) and credentials from docker-credential-* helpers.
/// </summary>
public sealed class RegistryAuthTests : IDisposable
{
    private static readonly Dictionary<string, string> Users = new() { ["tester"] = "s3cret" };

    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-auth-").FullName;

    public void Dispose() => ImageStore.RemoveTree(_dir);

    private string Config(string json)
    {
        var path = Path.Combine(_dir, $"config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private string Auths(string host, string user, string password) =>
        Config($"{{\"auths\":{{\"{host}\":{{\"auth\":\"{Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{user}:{password}"))}\"}}}}}}");

    private ImageService Service(string configPath, string store) =>
        new(new ImageStore(Path.Combine(_dir, store)), new DockerCredentials(configPath), new RegistrySettings(new HashSet<string>(), []), new Platform("amd64", "linux"));

    private string Layout(string tag)
    {
        var layout = Path.Combine(_dir, "layout-" + tag);
        OciLayout.Write(layout, tag, SampleImages.Layered());
        return layout;
    }

    [Fact]
    public async Task Pull_TokenAuth_AsksOncePerScope_ReusesTheToken()
    {
        using var issuer = new TokenIssuer(Users);
        using var registry = LocalRegistry.StartWithTokenAuth(issuer, ("tester", "s3cret"));
        registry.Push(Layout("v1"), "v1", "team/private:v1");
        var before = issuer.Requests.Count;

        using var service = Service(Auths(registry.Host, "tester", "s3cret"), "store");
        var image = await service.PullAsync($"{registry.Host}/team/private:v1");
        Assert.Equal(3, image.Layers.Count);
        Assert.Equal("base", File.ReadAllText(Path.Combine(image.Layers[0].Directory, "marker")));

        // manifest, config and three blobs, one token: asked for with the challenge's service and the pull scope.
        var asked = issuer.Requests.Skip(before).ToArray();
        var request = Assert.Single(asked);
        Assert.Equal(("tester", TokenIssuer.Service, "repository:team/private:pull"), request);

        // Pulled again (policy Always: the manifest is fetched again): the cached token is still good.
        await service.ResolveAsync($"{registry.Host}/team/private:v1", ImagePullPolicy.Always);
        Assert.Single(issuer.Requests.Skip(before));
    }

    [Fact]
    public async Task Pull_TokenAuth_ExpiredTokenIsRenewed()
    {
        using var issuer = new TokenIssuer(Users) { ExpiresIn = 120 };
        using var registry = LocalRegistry.StartWithTokenAuth(issuer, ("tester", "s3cret"));
        registry.Push(Layout("v1"), "v1", "team/app:v1");
        var reference = ImageReference.Parse($"{registry.Host}/team/app:v1");
        var time = new ManualTime(DateTimeOffset.UtcNow);
        using var client = new RegistryClient(registry.Host, new DockerCredentials(Auths(registry.Host, "tester", "s3cret")), new RegistrySettings(new HashSet<string>(), []), time);
        var before = issuer.Requests.Count;

        await client.GetManifestAsync(reference, "v1", CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(60));
        await client.GetManifestAsync(reference, "v1", CancellationToken.None);
        Assert.Single(issuer.Requests.Skip(before));                 // still valid: reused

        time.Advance(TimeSpan.FromSeconds(61));                      // past expires_in: the client must not send it again
        await client.GetManifestAsync(reference, "v1", CancellationToken.None);
        Assert.Equal(2, issuer.Requests.Skip(before).Count());
    }

    [Fact]
    public async Task Pull_TokenAuth_BadPassword_NamesTheTokenServiceAndWhatItSaid()
    {
        using var issuer = new TokenIssuer(Users);
        using var registry = LocalRegistry.StartWithTokenAuth(issuer, ("tester", "s3cret"));
        registry.Push(Layout("v1"), "v1", "team/private:v1");
        using var service = Service(Auths(registry.Host, "tester", "wrong"), "store");

        var e = await Assert.ThrowsAsync<ImagePullException>(() => service.PullAsync($"{registry.Host}/team/private:v1"));

        Assert.Equal(registry.Host, e.Registry);
        Assert.Contains($"{registry.Host}/team/private:v1", e.Message, StringComparison.Ordinal);
        Assert.Contains($"the token service {issuer.Realm} refused (HTTP 401", e.Message, StringComparison.Ordinal);
        Assert.Contains("invalid username or password", e.Message, StringComparison.Ordinal);
        Assert.Empty(service.List());
    }

    [Fact]
    public async Task Pull_TokenAuth_TokenTheRegistryRefuses_SaysTheRegistryRejectedIt()
    {
        using var issuer = new TokenIssuer(Users);
        using var registry = LocalRegistry.StartWithTokenAuth(issuer, ("tester", "s3cret"));
        registry.Push(Layout("v1"), "v1", "team/private:v1");
        issuer.SignWithUntrustedKey = true;
        using var service = Service(Auths(registry.Host, "tester", "s3cret"), "store");

        var e = await Assert.ThrowsAsync<ImagePullException>(() => service.PullAsync($"{registry.Host}/team/private:v1"));

        Assert.Equal(registry.Host, e.Registry);
        Assert.Contains("refused the token", e.Message, StringComparison.Ordinal);
        Assert.Contains("invalid_token", e.Message, StringComparison.Ordinal);
        Assert.Contains(issuer.Realm, e.Message, StringComparison.Ordinal);
        Assert.Empty(service.List());
    }

    [Fact]
    public async Task Pull_TokenAuth_Anonymous_GetsATokenWithoutAccess_AndIsToldToLogIn()
    {
        using var issuer = new TokenIssuer(Users);
        using var registry = LocalRegistry.StartWithTokenAuth(issuer, ("tester", "s3cret"));
        registry.Push(Layout("v1"), "v1", "team/private:v1");
        using var service = Service(Config("{}"), "store");
        var before = issuer.Requests.Count;

        var e = await Assert.ThrowsAsync<ImagePullException>(() => service.PullAsync($"{registry.Host}/team/private:v1"));

        Assert.Equal((null, TokenIssuer.Service, "repository:team/private:pull"), Assert.Single(issuer.Requests.Skip(before)));
        Assert.Contains("insufficient_scope", e.Message, StringComparison.Ordinal);
        Assert.Contains($"no credentials are configured for {registry.Host}", e.Message, StringComparison.Ordinal);
        Assert.Contains($"docker login {registry.Host}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pull_CredentialHelpers_CredHelpersThenCredsStore_AndTheirFailures()
    {
        using var registry = LocalRegistry.Start(("tester", "s3cret"));
        registry.Push(Layout("v1"), "v1", "helped:v1");
        var bin = Path.Combine(_dir, "bin");
        Directory.CreateDirectory(bin);
        // A helper as the docker CLI runs one: "get" as the argument, the server on stdin, {"Username","Secret"} on stdout.
        Helper(bin, "isotest-good", $"read server; echo \"$server\" >> {_dir}/asked-good; echo '{{\"ServerURL\":\"'$server'\",\"Username\":\"tester\",\"Secret\":\"s3cret\"}}'");
        Helper(bin, "isotest-store", $"read server; echo \"$server\" >> {_dir}/asked-store; echo '{{\"ServerURL\":\"'$server'\",\"Username\":\"tester\",\"Secret\":\"s3cret\"}}'");
        Helper(bin, "isotest-empty", "read server; echo 'credentials not found in native keychain'; exit 1");
        Helper(bin, "isotest-broken", "read server; echo 'the keyring is locked' >&2; exit 3");
        var path = Environment.GetEnvironmentVariable("PATH");
        Environment.SetEnvironmentVariable("PATH", bin + ":" + path);
        try
        {
            // credHelpers names this registry's helper; it wins over credsStore.
            using (var service = Service(Config($"{{\"credsStore\":\"isotest-store\",\"credHelpers\":{{\"{registry.Host}\":\"isotest-good\"}}}}"), "s1"))
            {
                Assert.Equal(3, (await service.PullAsync($"{registry.Host}/helped:v1")).Layers.Count);
            }

            Assert.Equal([registry.Host], File.ReadAllLines(Path.Combine(_dir, "asked-good")));
            Assert.False(File.Exists(Path.Combine(_dir, "asked-store")));

            // credsStore alone, for every registry.
            using (var service = Service(Config("{\"credsStore\":\"isotest-store\"}"), "s2"))
            {
                Assert.Equal(3, (await service.PullAsync($"{registry.Host}/helped:v1")).Layers.Count);
            }

            Assert.Equal([registry.Host], File.ReadAllLines(Path.Combine(_dir, "asked-store")));

            // "credentials not found": no credential, then auths (here none): the registry's demand is reported.
            using (var service = Service(Config("{\"credsStore\":\"isotest-empty\"}"), "s3"))
            {
                var e = await Assert.ThrowsAsync<ImagePullException>(() => service.PullAsync($"{registry.Host}/helped:v1"));
                Assert.Contains("none is configured", e.Message, StringComparison.Ordinal);
            }

            using (var service = Service(Config($"{{\"credHelpers\":{{\"{registry.Host}\":\"isotest-broken\"}}}}"), "s4"))
            {
                var e = await Assert.ThrowsAsync<ImagePullException>(() => service.PullAsync($"{registry.Host}/helped:v1"));
                Assert.Contains("docker-credential-isotest-broken get failed (exit 3): the keyring is locked", e.Message, StringComparison.Ordinal);
            }

            using (var service = Service(Config($"{{\"credHelpers\":{{\"{registry.Host}\":\"isotest-missing\"}}}}"), "s5"))
            {
                var e = await Assert.ThrowsAsync<ImagePullException>(() => service.PullAsync($"{registry.Host}/helped:v1"));
                Assert.Contains("docker-credential-isotest-missing is not on PATH", e.Message, StringComparison.Ordinal);
                Assert.Empty(service.List());
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("PATH", path);
        }
    }

    private static void Helper(string bin, string name, string body)
    {
        var file = Path.Combine(bin, "docker-credential-" + name);
        File.WriteAllText(file, $"#!/bin/sh\n[ \"$1\" = get ] || exit 2\n{body}\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
    }

    private sealed class ManualTime(DateTimeOffset now) : TimeProvider
    {
        private DateTimeOffset _now = now;

        public void Advance(TimeSpan by) => _now += by;

        public override DateTimeOffset GetUtcNow() => _now;
    }
}
