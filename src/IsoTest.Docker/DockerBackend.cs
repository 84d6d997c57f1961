using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Docker.DotNet;
using Docker.DotNet.Models;
using Docker.DotNet.X509;
using Version = System.Version;

namespace IsoTest.Docker;

/// <summary>
/// Runs IsoTest containers on a Docker Engine (local socket, rootless socket or <c>DOCKER_HOST</c>) through its
/// REST API. Every container is labelled with its owner process; a new backend removes the containers of
/// owners that have died, so nothing leaks even when a test process is killed, and no reaper container is needed.
/// </summary>
/// <remarks>
/// Differences from the built-in engine: <c>FromHost</c> is not supported; copy-on-write mounts are copies made
/// before start; a private network with published ports is Docker's bridge network (the container can reach
/// the outside); without ports it is <c>none</c> (loopback only).
/// </remarks>
public sealed class DockerBackend : IContainerBackend, INetworkBackend
{
    /// <summary>The newest Engine API this client speaks (the request/response models of Docker.DotNet.Enhanced 4.3 track Engine API 1.51).</summary>
    internal static readonly Version ClientMaxApiVersion = new(1, 51);

    private readonly DockerBackendOptions _options;
    private readonly string? _tlsDirectory;
    private readonly ConcurrentDictionary<string, DockerContainer> _containers = new();
    private readonly Lock _initLock = new();
    private Task<DockerClient>? _init;
    private DockerImages? _images;
    private int _disposed;

    /// <summary>Creates a backend for the daemon given in <paramref name="options"/> (or found like the docker CLI finds it).</summary>
    /// <exception cref="BackendUnavailableException"><c>DOCKER_HOST</c> or the docker context is not a usable endpoint, or TLS files are missing.</exception>
    public DockerBackend(DockerBackendOptions options)
        : this(options, Environment.GetEnvironmentVariable)
    {
    }

    /// <summary>As the public constructor, with the environment read through <paramref name="environment"/> (tests).</summary>
    internal DockerBackend(DockerBackendOptions options, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        string? tlsDirectory;
        if (options.Endpoint is { } endpoint)
        {
            tlsDirectory = options.TlsCertificateDirectory;
            Endpoint = DockerEndpoint.Parse(endpoint.OriginalString, tls: tlsDirectory is not null);
        }
        else
        {
            (Endpoint, var found) = DockerEndpoint.Resolve(environment, File.Exists);
            tlsDirectory = options.TlsCertificateDirectory ?? found;
        }

        if (tlsDirectory is not null && Endpoint.Scheme == "tcp")
        {
            _tlsDirectory = CheckTlsDirectory(tlsDirectory, Endpoint);
        }
    }

    /// <summary>
    /// A backend for the daemon the <c>docker</c> CLI would use: <c>DOCKER_HOST</c> (with <c>DOCKER_TLS_VERIFY</c>),
    /// the current docker context, <c>/var/run/docker.sock</c>, or <c>$XDG_RUNTIME_DIR/docker.sock</c>.
    /// </summary>
    /// <exception cref="BackendUnavailableException"><c>DOCKER_HOST</c> is not a usable endpoint.</exception>
    public static DockerBackend Create() => new(new DockerBackendOptions());

    /// <inheritdoc/>
    public string Name => "docker";

    /// <summary>The daemon's endpoint, e.g. <c>unix:///var/run/docker.sock</c>.</summary>
    public Uri Endpoint { get; }

    /// <summary>The Engine API version agreed with the daemon; null until the first call reached it.</summary>
    public Version? ApiVersion { get; private set; }

    /// <inheritdoc/>
    public async Task<IContainer> CreateAsync(ContainerSpec spec, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        ContainerSpecValidator.Validate(spec);
        var client = await GetClientAsync(cancellationToken).ConfigureAwait(false);
        var image = await _images!.EnsureAsync(spec, cancellationToken).ConfigureAwait(false);
        (spec, var healthcheck) = await _images.ApplyDefaultsAsync(spec, image, cancellationToken).ConfigureAwait(false);
        var name = spec.Name ?? DockerSpecMapper.NewName();
        var local = DockerEndpoint.IsLocal(Endpoint);
        var networks = spec.Networks;
        var gateway = networks.Count == 0 ? null : await GatewayAsync(client, networks[0], cancellationToken).ConfigureAwait(false);
        var parameters = DockerSpecMapper.Map(spec, image, name, local ? "127.0.0.1" : "", DockerOwner.Current, gateway);

        CreateContainerResponse created;
        try
        {
            created = await client.Containers.CreateContainerAsync(parameters, cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException e)
        {
            var hint = e.StatusCode == HttpStatusCode.Conflict
                ? " The name is taken: choose another WithName or leave it out so IsoTest generates one."
                : "";
            throw new ContainerStartException(null, $"Docker could not create container '{name}' from image {image}: {DockerErrors.Message(e)}.{hint}", inner: e);
        }

        var container = new DockerContainer(client, this, spec, created.ID, name, DockerEndpoint.PublishedHost(Endpoint), _options.TimeProvider, healthcheck);
        _containers[created.ID] = container;
        try
        {
            // Create attaches one network (or the default bridge, for published ports); the rest join before start.
            foreach (var network in networks.Skip(parameters.HostConfig!.NetworkMode == networks.FirstOrDefault()?.Name ? 1 : 0))
            {
                await client.Networks.ConnectNetworkAsync(
                    network.Name!,
                    new NetworkConnectParameters { Container = created.ID, EndpointConfig = new EndpointSettings { Aliases = [.. spec.NetworkAliases] } },
                    cancellationToken).ConfigureAwait(false);
            }

            await container.UploadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await container.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return container;
    }

    async Task<INetwork> INetworkBackend.CreateNetworkAsync(NetworkSpec spec, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var client = await GetClientAsync(cancellationToken).ConfigureAwait(false);
        return await DockerNetwork.CreateAsync(client, spec, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The network's gateway (the host's address on its bridge). A network made here knows it; one given
    /// by name is looked up, and one that does not exist or was disposed is refused before anything is made.
    /// </summary>
    private static async Task<string?> GatewayAsync(IDockerClient client, Network network, CancellationToken cancellationToken)
    {
        switch (network.Source)
        {
            case DockerNetwork { Disposed: true }:
                throw new ContainerStartException(null, $"Cannot create the container: network '{network.Name}' was disposed: containers cannot join it. Create a new network with NetworkBuilder, and dispose a network only after its containers.");
            case DockerNetwork docker:
                return docker.Gateway.ToString();
            case { } other:
                throw new ContainerStartException(null, $"Cannot create the container: network '{network.Name}' belongs to another backend ({other.GetType().Name}): create it with NetworkBuilder().WithBackend(...) of the Docker backend.");
        }

        try
        {
            var inspected = await client.Networks.InspectNetworkAsync(network.Name!, cancellationToken).ConfigureAwait(false);
            return inspected.IPAM?.Config?.Select(c => c.Gateway).FirstOrDefault(g => !string.IsNullOrEmpty(g) && !g.Contains(':', StringComparison.Ordinal));
        }
        catch (DockerNetworkNotFoundException e)
        {
            throw new ContainerStartException(null, $"Cannot create the container: there is no Docker network '{network.Name}': create it first (NetworkBuilder, or docker network create {network.Name}).", inner: e);
        }
    }

    /// <summary>Removes every container this backend created and still holds, then closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var errors = new List<Exception>();
        foreach (var container in _containers.Values)
        {
            try
            {
                await container.DisposeAsync().ConfigureAwait(false);
            }
            catch (IsoTestException e)
            {
                errors.Add(e);
            }
        }

        Task<DockerClient>? init;
        lock (_initLock)
        {
            init = _init;
        }

        if (init is { IsCompletedSuccessfully: true })
        {
            init.Result.Dispose();
        }

        if (errors.Count > 0)
        {
            throw new AggregateException("Some Docker containers could not be removed.", errors);
        }
    }

    internal void Forget(DockerContainer container) => _containers.TryRemove(container.Id, out _);

    /// <summary>Connects once: negotiates the API version and sweeps containers of dead owners. Retried after a failure.</summary>
    internal Task<DockerClient> GetClientAsync(CancellationToken cancellationToken)
    {
        Task<DockerClient> init;
        lock (_initLock)
        {
            if (_init is null || _init.IsFaulted || _init.IsCanceled)
            {
                _init = Task.Run(() => InitializeAsync(CancellationToken.None), CancellationToken.None);
            }

            init = _init;
        }

        return init.WaitAsync(cancellationToken);
    }

    private async Task<DockerClient> InitializeAsync(CancellationToken cancellationToken)
    {
        var version = await NegotiateAsync(cancellationToken).ConfigureAwait(false);
        var client = NewClient().WithApiVersion(version).Build();
        ApiVersion = version;
        _images = new DockerImages(client, _options.PullPolicy);
        try
        {
            await SweepAsync(client, cancellationToken).ConfigureAwait(false);
            await DockerNetwork.SweepAsync(client, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException)
        {
            client.Dispose();
            throw Unavailable(e);
        }

        return client;
    }

    /// <summary>min(the daemon's API version, the client's), or DOCKER_API_VERSION when set (as the docker CLI does).</summary>
    private async Task<Version> NegotiateAsync(CancellationToken cancellationToken)
    {
        // Unversioned requests are answered at the daemon's own version: safe for /version on any daemon.
        using var probe = NewClient().WithTimeout(TimeSpan.FromSeconds(30)).Build();
        VersionResponse version;
        try
        {
            version = await probe.System.GetVersionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or IOException or TimeoutException or DockerApiException or TaskCanceledException or AuthenticationException)
        {
            throw Unavailable(e);
        }

        var forced = Environment.GetEnvironmentVariable("DOCKER_API_VERSION");
        if (!string.IsNullOrWhiteSpace(forced))
        {
            return Version.TryParse(forced.Trim(), out var pinned)
                ? pinned
                : throw new BackendUnavailableException($"DOCKER_API_VERSION='{forced}' is not a version: use e.g. 1.41, or unset it to negotiate.");
        }

        return NegotiateVersion(version.APIVersion);
    }

    internal static Version NegotiateVersion(string? daemonApiVersion) =>
        Version.TryParse(daemonApiVersion, out var daemon) && daemon < ClientMaxApiVersion ? daemon : ClientMaxApiVersion;

    /// <summary>Force-removes containers labelled by an IsoTest process on this host that no longer runs.</summary>
    internal static async Task<int> SweepAsync(IDockerClient client, CancellationToken cancellationToken)
    {
        var me = DockerOwner.Current;
        var list = await client.Containers.ListContainersAsync(
            new ContainersListParameters
            {
                All = true,
                Filters = new Dictionary<string, IDictionary<string, bool>>
                {
                    ["label"] = new Dictionary<string, bool>
                    {
                        [$"{DockerOwner.MarkerLabel}=1"] = true,
                        [$"{DockerOwner.HostLabel}={me.Host}"] = true,
                    },
                },
            },
            cancellationToken).ConfigureAwait(false);

        var removed = 0;
        foreach (var container in list)
        {
            var owner = DockerOwner.FromLabels(container.Labels);
            if (owner is null || owner.Host != me.Host || owner == me || !owner.IsGone())
            {
                continue;
            }

            try
            {
                await client.Containers.RemoveContainerAsync(container.ID, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken)
                    .ConfigureAwait(false);
                removed++;
            }
            catch (DockerApiException e) when (e.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Conflict)
            {
                // gone already, or another sweep is removing it
            }
        }

        return removed;
    }

    private BackendUnavailableException Unavailable(Exception e)
    {
        if (_tlsDirectory is not null && FindInChain<AuthenticationException>(e) is { } tls)
        {
            return new BackendUnavailableException(
                $"The TLS handshake with the Docker daemon at {Endpoint} failed ({tls.GetBaseException().Message}): " +
                $"{_tlsDirectory} must hold the CA that signed the daemon's certificate as ca.pem, and a client certificate " +
                "the daemon trusts as cert.pem and key.pem (DOCKER_CERT_PATH; `docker context inspect` shows the directory the CLI uses).",
                e);
        }

        if (_tlsDirectory is null && e.GetBaseException().Message.Contains("HTTPS server", StringComparison.Ordinal))
        {
            return new BackendUnavailableException(
                $"The Docker daemon at {Endpoint} speaks TLS only ({e.GetBaseException().Message.Trim()}): set DOCKER_TLS_VERIFY=1 and " +
                "DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem (or DockerBackendOptions.TlsCertificateDirectory).",
                e);
        }

        return new BackendUnavailableException(
            string.Create(CultureInfo.InvariantCulture,
                $"No Docker daemon answers at {Endpoint} ({e.GetBaseException().Message}). Start one (systemctl start docker; in this repository .ci/docker-setup.sh), or point DOCKER_HOST at a running daemon."),
            e);
    }

    private static T? FindInChain<T>(Exception? e)
        where T : Exception
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is T found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>A client for <see cref="Endpoint"/>, with this backend's TLS client certificate when it has one.</summary>
    private DockerClientBuilder NewClient()
    {
        var builder = new DockerClientBuilder().WithEndpoint(Endpoint);
        return _tlsDirectory is null
            ? builder
            : builder.WithAuthProvider(DockerTlsCertificates.LoadFromDirectory(_tlsDirectory, true, "ca.pem", "cert.pem", "key.pem").CreateCredentials());
    }

    /// <summary>Every file mutual TLS needs, checked up front so that a missing one is named, not a handshake error.</summary>
    private static string CheckTlsDirectory(string directory, Uri endpoint)
    {
        var missing = DockerEndpoint.TlsFiles.Where(f => !File.Exists(Path.Combine(directory, f))).ToList();
        if (missing.Count > 0)
        {
            throw new BackendUnavailableException(
                $"TLS to the Docker daemon at {endpoint} needs ca.pem, cert.pem and key.pem in {directory}, but {string.Join(", ", missing)} " +
                $"{(missing.Count == 1 ? "is" : "are")} missing: point DOCKER_CERT_PATH (or TlsCertificateDirectory) at the directory that holds them, " +
                "or unset DOCKER_TLS_VERIFY for a daemon without TLS.");
        }

        return directory;
    }
}
