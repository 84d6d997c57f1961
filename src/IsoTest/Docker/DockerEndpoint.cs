namespace IsoTest.Docker;

/// <summary>Finds the Docker daemon the way the <c>docker</c> CLI does.</summary>
internal static class DockerEndpoint
{
    internal const string DefaultSocket = "/var/run/docker.sock";

    /// <summary>DOCKER_HOST, else the system socket, else the rootless socket; the system socket when none exists (so the error names it).</summary>
    internal static Uri Resolve(Func<string, string?> environment, Func<string, bool> socketExists)
    {
        var dockerHost = environment("DOCKER_HOST");
        if (!string.IsNullOrWhiteSpace(dockerHost))
        {
            return Parse(dockerHost, tls: TlsDirectory(environment) is not null);
        }

        if (socketExists(DefaultSocket))
        {
            return new Uri("unix://" + DefaultSocket);
        }

        var runtimeDir = environment("XDG_RUNTIME_DIR");
        if (!string.IsNullOrEmpty(runtimeDir))
        {
            var rootless = Path.Combine(runtimeDir, "docker.sock");
            if (socketExists(rootless))
            {
                return new Uri("unix://" + rootless);
            }
        }

        return new Uri("unix://" + DefaultSocket);
    }

    /// <summary>The files a TLS client needs in its certificate directory, named as the docker CLI names them.</summary>
    internal static readonly string[] TlsFiles = ["ca.pem", "cert.pem", "key.pem"];

    /// <summary>
    /// The certificate directory for mutual TLS when the environment asks for it the way the docker CLI
    /// reads it: <c>DOCKER_TLS_VERIFY</c> set (to anything) means TLS that verifies the daemon, with
    /// <c>DOCKER_CERT_PATH</c> (default <c>~/.docker</c>) holding ca.pem, cert.pem and key.pem. Null: no TLS.
    /// </summary>
    internal static string? TlsDirectory(Func<string, string?> environment)
    {
        if (string.IsNullOrEmpty(environment("DOCKER_TLS_VERIFY")))
        {
            return null;
        }

        var configured = environment("DOCKER_CERT_PATH");
        return !string.IsNullOrEmpty(configured)
            ? configured
            : Path.Combine(environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker");
    }

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
