namespace IsoTest.Docker;

/// <summary>Settings of a <see cref="DockerBackend"/>.</summary>
public sealed class DockerBackendOptions
{
    /// <summary>
    /// The daemon to talk to: <c>unix:///var/run/docker.sock</c> or <c>tcp://host:2375</c>.
    /// Null means what the <c>docker</c> CLI would use: <c>DOCKER_HOST</c>, else the current docker context,
    /// else <c>/var/run/docker.sock</c>, else the rootless daemon's <c>$XDG_RUNTIME_DIR/docker.sock</c>.
    /// </summary>
    public Uri? Endpoint { get; init; }

    /// <summary>
    /// Mutual TLS with a <c>tcp://</c> daemon: a directory holding <c>ca.pem</c> (the CA that signed the
    /// daemon's certificate), <c>cert.pem</c> and <c>key.pem</c> (this client's), as <c>DOCKER_CERT_PATH</c>
    /// names it. Null means what the <c>docker</c> CLI would do: when <see cref="Endpoint"/> is null too,
    /// <c>DOCKER_TLS_VERIFY</c> set turns TLS on with <c>DOCKER_CERT_PATH</c> (default <c>~/.docker</c>).
    /// </summary>
    public string? TlsCertificateDirectory { get; init; }

    /// <summary>When images named by <c>FromImage</c> are pulled. Default <see cref="ImagePullPolicy.Missing"/>.</summary>
    public ImagePullPolicy PullPolicy { get; init; } = ImagePullPolicy.Missing;

    /// <summary>The clock used for log timestamps the daemon did not stamp. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
