using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IsoTest.Docker;
using Xunit;

namespace IsoTest.Tests.Docker;

/// <summary>
/// The Docker backend over mutual TLS, against the real dockerd that .ci/docker-setup.sh starts with a
/// TLS listener on 127.0.0.1:2376 and the test certificates in /etc/isotest/docker-tls (the layout
/// DOCKER_CERT_PATH names: ca.pem, cert.pem, key.pem). Docker-in-Docker CI services (GitLab's
/// docker:dind) talk this way. Docker contexts are made with the real docker CLI.
/// </summary>
public sealed class DockerTlsTests : IDisposable
{
    private static readonly Uri TlsEndpoint = new("tcp://127.0.0.1:2376");
    private static readonly string CertificateDirectory =
        Environment.GetEnvironmentVariable("ISOTEST_DOCKER_TLS_DIR") is { Length: > 0 } dir ? dir : "/etc/isotest/docker-tls";

    private readonly string _scratch = Directory.CreateTempSubdirectory("isotest-tls-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public async Task MutualTls_RunsAContainerAndReadsItsOutput()
    {
        RequireSetUp();
        await using var backend = new DockerBackend(new DockerBackendOptions { Endpoint = TlsEndpoint, TlsCertificateDirectory = CertificateDirectory });

        await using var container = await new ContainerBuilder()
            .FromImage(DockerDaemonFixture.Image)
            .WithCommand("echo", "over tls")
            .WithBackend(backend)
            .StartAsync();

        Assert.Equal(0, await container.WaitForExitAsync());
        Assert.Equal("over tls", Assert.Single(container.GetLogs()).Text);
        Assert.NotNull(backend.ApiVersion);
    }

    [Fact]
    public async Task PlainClient_OnTheTlsPort_SaysToTurnTlsOn()
    {
        RequireSetUp();
        await using var backend = new DockerBackend(new DockerBackendOptions { Endpoint = TlsEndpoint });

        var error = await Assert.ThrowsAsync<BackendUnavailableException>(() => backend.GetClientAsync(CancellationToken.None));

        Assert.Contains("127.0.0.1:2376", error.Message);
        Assert.Contains("DOCKER_TLS_VERIFY=1", error.Message);
    }

    [Fact]
    public void MissingClientKey_NamesTheFileAndTheFix()
    {
        RequireSetUp();
        File.Copy(Path.Combine(CertificateDirectory, "ca.pem"), Path.Combine(_scratch, "ca.pem"));
        File.Copy(Path.Combine(CertificateDirectory, "cert.pem"), Path.Combine(_scratch, "cert.pem"));

        var error = Assert.Throws<BackendUnavailableException>(() =>
            new DockerBackend(new DockerBackendOptions { Endpoint = TlsEndpoint, TlsCertificateDirectory = _scratch }));

        Assert.Contains("but key.pem is missing", error.Message); // only what is missing is named
        Assert.Contains(_scratch, error.Message);
        Assert.Contains("DOCKER_CERT_PATH", error.Message);
    }

    [Fact]
    public async Task ClientCertificateTheDaemonDoesNotTrust_TheHandshakeErrorSaysWhatToCheck()
    {
        RequireSetUp();
        // The daemon's CA (so the client trusts the daemon), but a client certificate no CA of the daemon signed.
        File.Copy(Path.Combine(CertificateDirectory, "ca.pem"), Path.Combine(_scratch, "ca.pem"));
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=stranger", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        using var stranger = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(Path.Combine(_scratch, "cert.pem"), stranger.ExportCertificatePem());
        File.WriteAllText(Path.Combine(_scratch, "key.pem"), key.ExportPkcs8PrivateKeyPem());
        await using var backend = new DockerBackend(new DockerBackendOptions { Endpoint = TlsEndpoint, TlsCertificateDirectory = _scratch });

        var error = await Assert.ThrowsAsync<BackendUnavailableException>(() => backend.GetClientAsync(CancellationToken.None));

        Assert.Contains("127.0.0.1:2376", error.Message);
        Assert.Contains(_scratch, error.Message);
    }

    [Fact]
    public async Task DockerContext_MadeByTheDockerCli_IsWhereTheBackendGoes()
    {
        RequireSetUp();
        var config = Path.Combine(_scratch, "docker-config");
        var d = CertificateDirectory;
        DockerCli(config, "context", "create", "isotest-tls", "--docker", $"host=tcp://127.0.0.1:2376,ca={d}/ca.pem,cert={d}/cert.pem,key={d}/key.pem");
        DockerCli(config, "context", "use", "isotest-tls");
        var environment = new Dictionary<string, string> { ["DOCKER_CONFIG"] = config }; // no DOCKER_HOST: the context decides

        await using var backend = new DockerBackend(new DockerBackendOptions(), k => environment.GetValueOrDefault(k));
        await using var container = await new ContainerBuilder()
            .FromImage(DockerDaemonFixture.Image)
            .WithCommand("echo", "via the context")
            .WithBackend(backend)
            .StartAsync();

        Assert.Equal(new Uri("tcp://127.0.0.1:2376"), backend.Endpoint);
        Assert.Equal(0, await container.WaitForExitAsync());
        Assert.Equal("via the context", Assert.Single(container.GetLogs()).Text);
    }

    [Fact]
    public void DockerContext_Unknown_SaysHowToListThem()
    {
        var environment = new Dictionary<string, string> { ["DOCKER_CONFIG"] = _scratch, ["DOCKER_CONTEXT"] = "no-such-context" };

        var error = Assert.Throws<BackendUnavailableException>(() => new DockerBackend(new DockerBackendOptions(), k => environment.GetValueOrDefault(k)));

        Assert.Contains("'no-such-context' (DOCKER_CONTEXT)", error.Message);
        Assert.Contains("docker context ls", error.Message);
    }

    [Fact]
    public void DockerHost_WinsOverTheContext_LikeTheDockerCli()
    {
        var environment = new Dictionary<string, string>
        {
            ["DOCKER_CONFIG"] = _scratch, ["DOCKER_CONTEXT"] = "no-such-context", ["DOCKER_HOST"] = "unix:///var/run/docker.sock",
        };

        var backend = new DockerBackend(new DockerBackendOptions(), k => environment.GetValueOrDefault(k));

        Assert.Equal(new Uri("unix:///var/run/docker.sock"), backend.Endpoint);
    }

    /// <summary>Runs the real docker CLI with its own config directory (contexts live there).</summary>
    private static void DockerCli(string configDirectory, params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("docker") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOCKER_CONFIG"] = configDirectory;
        start.Environment.Remove("DOCKER_HOST");
        start.Environment.Remove("DOCKER_CONTEXT");
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"docker {string.Join(' ', arguments)} failed: {stderr.Result}");
    }

    private static void RequireSetUp()
    {
        // Never a silent pass: without the listener these tests fail and say how to get it.
        Assert.True(File.Exists(Path.Combine(CertificateDirectory, "key.pem")),
            $"no test TLS certificates in {CertificateDirectory}: run .ci/docker-setup.sh as root (it makes them and starts dockerd with a TLS listener on 127.0.0.1:2376)");
    }
}
