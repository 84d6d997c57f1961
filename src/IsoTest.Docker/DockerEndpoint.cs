using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace IsoTest.Docker;

/// <summary>Finds the Docker daemon the way the <c>docker</c> CLI does.</summary>
internal static class DockerEndpoint
{
    internal const string DefaultSocket = "/var/run/docker.sock";

    /// <summary>
    /// The daemon the docker CLI would talk to, and the TLS certificate directory for it (null: no TLS):
    /// DOCKER_HOST (with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH), else the context named by DOCKER_CONTEXT or
    /// by config.json's currentContext, else the system socket, else the rootless socket; the system
    /// socket when none exists (so the error names it).
    /// </summary>
    internal static (Uri Endpoint, string? TlsDirectory) Resolve(Func<string, string?> environment, Func<string, bool> socketExists)
    {
        var dockerHost = environment("DOCKER_HOST");
        if (!string.IsNullOrWhiteSpace(dockerHost))
        {
            var tls = TlsDirectory(environment);
            return (Parse(dockerHost, tls: tls is not null), tls);
        }

        if (Context(environment) is { } context)
        {
            return (context.Host, context.TlsDirectory);
        }

        if (socketExists(DefaultSocket))
        {
            return (new Uri("unix://" + DefaultSocket), null);
        }

        var runtimeDir = environment("XDG_RUNTIME_DIR");
        if (!string.IsNullOrEmpty(runtimeDir))
        {
            var rootless = Path.Combine(runtimeDir, "docker.sock");
            if (socketExists(rootless))
            {
                return (new Uri("unix://" + rootless), null);
            }
        }

        return (new Uri("unix://" + DefaultSocket), null);
    }

    /// <summary>A daemon named by a docker CLI context: its endpoint and, when the context holds them, its TLS files.</summary>
    internal sealed record ContextEndpoint(string Name, Uri Host, string? TlsDirectory);

    /// <summary>
    /// The docker CLI context in use, read from where the CLI keeps it: DOCKER_CONTEXT, else
    /// "currentContext" in config.json, in DOCKER_CONFIG (default ~/.docker). Null for none or "default"
    /// (the local socket). A context stores its endpoint in contexts/meta/&lt;sha256(name)&gt;/meta.json
    /// and its TLS files in contexts/tls/&lt;sha256(name)&gt;/docker/.
    /// </summary>
    /// <exception cref="BackendUnavailableException">The context named does not exist, or cannot be used; the message says what to do.</exception>
    internal static ContextEndpoint? Context(Func<string, string?> environment)
    {
        var configDir = ConfigDirectory(environment);
        if (configDir is null)
        {
            return null;
        }

        var name = environment("DOCKER_CONTEXT");
        var from = "DOCKER_CONTEXT";
        var configFile = Path.Combine(configDir, "config.json");
        if (string.IsNullOrEmpty(name) && File.Exists(configFile))
        {
            name = ReadJson(configFile, root => root.TryGetProperty("currentContext", out var current) && current.ValueKind == JsonValueKind.String ? current.GetString() : null);
            from = $"currentContext in {configFile}";
        }

        if (string.IsNullOrEmpty(name) || name == "default")
        {
            return null;
        }

        var id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)));
        var metaFile = Path.Combine(configDir, "contexts", "meta", id, "meta.json");
        if (!File.Exists(metaFile))
        {
            throw new BackendUnavailableException(
                $"Docker context '{name}' ({from}) does not exist in {configDir}: `docker context ls` lists the contexts, " +
                "and `docker context use default` goes back to the local daemon.");
        }

        var (host, skipVerify) = ReadJson(metaFile, root =>
            root.TryGetProperty("Endpoints", out var endpoints) && endpoints.TryGetProperty("docker", out var docker)
                ? (docker.TryGetProperty("Host", out var h) ? h.GetString() : null,
                   docker.TryGetProperty("SkipTLSVerify", out var skip) && skip.ValueKind == JsonValueKind.True)
                : (null, false));
        if (string.IsNullOrEmpty(host))
        {
            throw new BackendUnavailableException($"Docker context '{name}' has no docker endpoint in {metaFile}: recreate it with `docker context create {name} --docker host=...`.");
        }

        if (skipVerify)
        {
            throw new BackendUnavailableException(
                $"Docker context '{name}' skips verifying the daemon's TLS certificate, which IsoTest does not do: " +
                $"give the context the daemon's CA (`docker context update {name} --docker ca=...,cert=...,key=...`).");
        }

        var tlsDir = Path.Combine(configDir, "contexts", "tls", id, "docker");
        var tls = Directory.Exists(tlsDir) ? tlsDir : null;
        return new ContextEndpoint(name, Parse(host, tls: tls is not null), tls);
    }

    private static T ReadJson<T>(string file, Func<JsonElement, T> read)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(file));
            return read(document.RootElement);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or IOException)
        {
            throw new BackendUnavailableException($"{file} cannot be read ({e.Message}): fix or remove it (the docker CLI reads it too).", e);
        }
    }

    /// <summary>The files a TLS client needs in its certificate directory, named as the docker CLI names them.</summary>
    internal static readonly string[] TlsFiles = ["ca.pem", "cert.pem", "key.pem"];

    /// <summary>
    /// The certificate directory for mutual TLS when the environment asks for it the way the docker CLI
    /// reads it: <c>DOCKER_TLS_VERIFY</c> set (to anything) means TLS that verifies the daemon, with
    /// <c>DOCKER_CERT_PATH</c> (default: the configuration directory, DOCKER_CONFIG or <c>~/.docker</c>, as the CLI
    /// does) holding ca.pem, cert.pem and key.pem. Null: no TLS.
    /// </summary>
    internal static string? TlsDirectory(Func<string, string?> environment) =>
        string.IsNullOrEmpty(environment("DOCKER_TLS_VERIFY"))
            ? null
            : environment("DOCKER_CERT_PATH") is { Length: > 0 } configured ? configured
            : ConfigDirectory(environment) ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker");

    /// <summary>The docker CLI's configuration directory: DOCKER_CONFIG, else ~/.docker; null without either.</summary>
    private static string? ConfigDirectory(Func<string, string?> environment) =>
        environment("DOCKER_CONFIG") is { Length: > 0 } configured ? configured
        : environment("HOME") is { Length: > 0 } home ? Path.Combine(home, ".docker")
        : null;

    /// <summary>
    /// Parses a DOCKER_HOST value: <c>unix:///path</c>, <c>tcp://host[:port]</c> (port 2375 when omitted,
    /// 2376 with <paramref name="tls"/>, Docker's defaults).
    /// </summary>
    /// <exception cref="BackendUnavailableException">The value is not an endpoint this backend can use; the message says which are.</exception>
    internal static Uri Parse(string dockerHost, bool tls = false)
    {
        var value = dockerHost.Trim();
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri))
        {
            throw new BackendUnavailableException(
                $"DOCKER_HOST='{dockerHost}' is not a URI: use unix:///var/run/docker.sock or tcp://host:2375.");
        }

        switch (uri.Scheme)
        {
            case "unix":
                if (string.IsNullOrEmpty(uri.AbsolutePath) || uri.AbsolutePath == "/")
                {
                    throw new BackendUnavailableException(
                        $"DOCKER_HOST='{dockerHost}' names no socket: use unix:///path/to/docker.sock (three slashes).");
                }

                return new Uri("unix://" + uri.AbsolutePath);
            case "tcp" or "http":
                if (string.IsNullOrEmpty(uri.Host))
                {
                    throw new BackendUnavailableException($"DOCKER_HOST='{dockerHost}' names no host: use tcp://host:2375.");
                }

                // Uri reports -1 for tcp:// without a port (no known default); Docker's are 2375, 2376 with TLS.
                var port = uri.Port > 0 ? uri.Port : tls ? 2376 : 2375;
                return new Uri($"tcp://{uri.Host}:{port}");
            default:
                throw new BackendUnavailableException(
                    $"DOCKER_HOST='{dockerHost}' uses '{uri.Scheme}://', which the IsoTest Docker backend does not support: " +
                    "use unix:// or tcp:// (for ssh://, forward the socket with `ssh -L /tmp/docker.sock:/var/run/docker.sock host` and set DOCKER_HOST=unix:///tmp/docker.sock).");
        }
    }

    /// <summary>True when containers' published ports are reached through the host's loopback (local daemon).</summary>
    internal static bool IsLocal(Uri endpoint) =>
        endpoint.Scheme == "unix" || endpoint.IsLoopback;

    /// <summary>The host name tests connect to for published ports.</summary>
    internal static string PublishedHost(Uri endpoint) =>
        IsLocal(endpoint) ? "127.0.0.1" : endpoint.Host;
}
