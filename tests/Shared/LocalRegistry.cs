using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace IsoTest.TestSupport;

/// <summary>
/// Debian's docker-registry (distribution 2.8) on a free loopback port with its storage in a temp
/// directory; optionally behind htpasswd basic auth. Killed and removed on dispose.
/// </summary>
public sealed class LocalRegistry : IDisposable
{
    private readonly System.Diagnostics.Process _process;
    private readonly string _dir;

    private LocalRegistry(System.Diagnostics.Process process, string dir, int port, (string User, string Password)? credentials)
    {
        _process = process;
        _dir = dir;
        Port = port;
        Credentials = credentials;
    }

    public int Port { get; }

    public string Host => $"127.0.0.1:{Port}";

    public (string User, string Password)? Credentials { get; }

    public static bool Available => System.IO.File.Exists("/usr/bin/docker-registry") && System.IO.File.Exists("/usr/bin/skopeo");

    /// <summary>
    /// A registry with <c>auth: token</c>: it trusts <paramref name="issuer"/>'s certificate and sends clients to its realm;
    /// <paramref name="credentials"/> are what <see cref="Push"/> gives skopeo (the issuer must know them).
    /// </summary>
    public static LocalRegistry StartWithTokenAuth(TokenIssuer issuer, (string User, string Password) credentials) =>
        Start(credentials, dir =>
        {
            System.IO.File.WriteAllText(Path.Combine(dir, "issuer.pem"), issuer.CertificatePem);
            return $"auth:\n  token:\n    realm: {issuer.Realm}\n    service: {TokenIssuer.Service}\n    issuer: {TokenIssuer.Issuer}\n    rootcertbundle: {dir}/issuer.pem\n";
        });

    public static LocalRegistry Start((string User, string Password)? credentials = null) =>
        Start(credentials, credentials is { } c
            ? dir =>
            {
                // bcrypt, the only hash distribution accepts
                Run("htpasswd", "-Bbc", Path.Combine(dir, "htpasswd"), c.User, c.Password);
                return $"auth:\n  htpasswd:\n    realm: isotest\n    path: {dir}/htpasswd\n";
            }
            : _ => "");

    private static LocalRegistry Start((string User, string Password)? credentials, Func<string, string> authSection)
    {
        var dir = Directory.CreateTempSubdirectory("isotest-registry-").FullName;
        var port = FreePort();
        var auth = authSection(dir);

        System.IO.File.WriteAllText(Path.Combine(dir, "config.yml"),
            $"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}");
        var process = System.Diagnostics.Process.Start(new ProcessStartInfo("/usr/bin/docker-registry", ["serve", Path.Combine(dir, "config.yml")])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        process.ErrorDataReceived += (_, _) => { };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var registry = new LocalRegistry(process, dir, port, credentials);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                return registry;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
            {
                Thread.Sleep(50);
            }
            catch
            {
                registry.Dispose();
                throw;
            }
        }
    }

    /// <summary>Pushes an OCI layout's image (all platforms) with skopeo, as a user would.</summary>
    public void Push(string layoutDir, string tag, string repository)
    {
        var args = new List<string> { "copy", "--all", "--dest-tls-verify=false", "--quiet" };
        if (Credentials is { } c)
        {
            args.Add($"--dest-creds={c.User}:{c.Password}");
        }

        args.Add($"oci:{layoutDir}:{tag}");
        args.Add($"docker://{Host}/{repository}");
        Run("skopeo", [.. args]);
    }

    /// <summary>Overwrites a blob in the registry's storage with other bytes (a corrupted registry).</summary>
    public void CorruptBlob(string digest, byte[] content)
    {
        var hex = digest["sha256:".Length..];
        var path = Path.Combine(_dir, "data", "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
        System.IO.File.WriteAllBytes(path, content);
    }

    public static void Run(string program, params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited {p.ExitCode}: {stderr}{stdout.Result}");
        }
    }

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
