using System.Globalization;
using System.Net;
using System.Net.Sockets;
using IsoTest.Server.Api;
using IsoTest.Server.Containers;
using IsoTest.Server.Http;
using IsoTest.Server.Images;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace IsoTest.Server;

/// <summary>Where and how <see cref="DockerApiServer"/> listens, with dockerd's flag names in mind.</summary>
public sealed class DockerApiServerOptions
{
    /// <summary>
    /// The addresses to listen on, as dockerd's <c>-H</c>: <c>unix:///path/docker.sock</c> or
    /// <c>tcp://127.0.0.1:PORT</c> (loopback only). Empty: <see cref="DefaultSocket"/>.
    /// </summary>
    public IReadOnlyList<string> Hosts { get; init; } = [];

    /// <summary>A group whose members may use the unix socket (dockerd's <c>--group</c>; the socket becomes 0660). Null: only the owner and root (0600).</summary>
    public string? Group { get; init; }

    /// <summary>The backend the containers run on. Null: the built-in engine.</summary>
    public IContainerBackend? Backend { get; init; }

    /// <summary>
    /// The image store's directory (dockerd's <c>--data-root</c>, for images). Null: the engine's default
    /// (<c>ISOTEST_IMAGE_STORE</c>, else <c>/var/lib/isotest</c> as root, <c>~/.local/share/isotest</c> otherwise).
    /// Used only when the server makes its own engine (<see cref="Backend"/> null).
    /// </summary>
    public string? ImageStore { get; init; }

    /// <summary>How long a hijack request (attach, exec start) may take to arrive once its first byte has (Kestrel's RequestHeadersTimeout default; tests shorten it).</summary>
    internal TimeSpan HijackRequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The clock for timestamps (tests).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary><c>/run/isotest/docker.sock</c> as root, <c>$XDG_RUNTIME_DIR/isotest/docker.sock</c> otherwise.</summary>
    public static string DefaultSocket()
    {
        var runtime = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return PeerCredentials.OwnUid == 0 || string.IsNullOrEmpty(runtime)
            ? "/run/isotest/docker.sock"
            : Path.Combine(runtime, "isotest", "docker.sock");
    }
}

/// <summary>
/// IsoTest's engine behind Docker's Engine API: the docker CLI, Testcontainers and IsoTest's own Docker
/// backend run on it unchanged with <c>DOCKER_HOST=unix:///...</c>. Containers belong to the server: they
/// are removed when it stops, and die with it if it is killed.
/// </summary>
public sealed class DockerApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ContainerTable _containers;
    private readonly Networks.NetworkTable _networks;
    private readonly IContainerBackend? _ownedBackend;
    private readonly List<string> _sockets;
    private readonly CancellationTokenSource _stopping;
    private int _disposed;

    private DockerApiServer(WebApplication app, ContainerTable containers, Networks.NetworkTable networks, IContainerBackend? ownedBackend, List<string> sockets, IReadOnlyList<string> addresses, CancellationTokenSource stopping)
    {
        _stopping = stopping;
        _app = app;
        _containers = containers;
        _networks = networks;
        _ownedBackend = ownedBackend;
        _sockets = sockets;
        Addresses = addresses;
    }

    /// <summary>What it listens on, as <c>DOCKER_HOST</c> values.</summary>
    public IReadOnlyList<string> Addresses { get; }

    /// <summary>Starts listening; returns once every address accepts connections.</summary>
    /// <exception cref="ArgumentException">An address is malformed, or TCP beyond loopback was asked for.</exception>
    public static async Task<DockerApiServer> StartAsync(DockerApiServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var hosts = options.Hosts.Count > 0 ? options.Hosts : ["unix://" + DockerApiServerOptions.DefaultSocket()];
        var listeners = hosts.Select(Listener.Parse).ToList();
        var allowedGid = options.Group is null ? (int?)null : PeerCredentials.GroupId(options.Group);
        var backend = options.Backend;
        IContainerBackend? owned = null;
        if (backend is null)
        {
            owned = backend = ContainerBackends.Create(BackendKind.Engine);
            if (backend is IsoTest.Engine.EngineBackend own)
            {
                // dockerd's PID 1 semantics: a command without a SIGTERM handler outlives `docker stop`'s SIGTERM (137 after the grace period).
                own.CommandIsPid1 = true;
                if (options.ImageStore is { } root)
                {
                    own.Images = new(() => new IsoTest.Engine.Images.ImageService(new IsoTest.Engine.Images.ImageStore(root)));
                }
            }
        }

        // The engine's own store when the server runs on it, so what is pulled here is what its containers run from.
        var images = new ImageCatalog(backend is IsoTest.Engine.EngineBackend engine ? engine.Images.Value : new IsoTest.Engine.Images.ImageService(new IsoTest.Engine.Images.ImageStore(IsoTest.Engine.Images.ImageStore.DefaultRoot())));
        var events = new ServerEvents(options.TimeProvider);
        var networks = new Networks.NetworkTable(backend, options.TimeProvider);
        // Volumes beside the images, in the server's data root (dockerd's --data-root keeps both).
        var volumes = new Volumes.VolumeTable(Path.Combine(images.Store.Store.Root, "volumes"), options.TimeProvider);
        var containers = new ContainerTable(backend, images, networks, volumes, events, options.TimeProvider);
        var execs = new ExecTable();
        var stopping = new CancellationTokenSource();
        var keepAlive = TimeSpan.FromMinutes(10);
        var hijack = new RawHijack(r => HijackRoute(r, containers, execs), new RawHijack.Limits(keepAlive, options.HijackRequestTimeout), stopping.Token);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = ArchiveEndpoints.MaxUpload;   // archive uploads; JSON bodies are read bounded by the serializer
            kestrel.Limits.KeepAliveTimeout = keepAlive;
            foreach (var listener in listeners)
            {
                if (listener.SocketPath is { } path)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    File.Delete(path);
                    kestrel.ListenUnixSocket(path, o =>
                    {
                        o.Use(next => connection => PeerCredentials.CheckAsync(connection, next, allowedGid));
                        o.Use(next => connection => hijack.InvokeAsync(connection, next));
                    });
                }
                else
                {
                    kestrel.Listen(listener.Endpoint!, o =>
                    {
                        o.Protocols = HttpProtocols.Http1;
                        o.Use(next => connection => hijack.InvokeAsync(connection, next));
                    });
                }
            }
        });

        var app = builder.Build();

        app.Use(ErrorHandling.InvokeAsync);
        app.Use(ApiVersioning.InvokeAsync);
        app.UseRouting();   // after the version prefix is stripped, so /v1.44/containers/json finds its route
        SystemEndpoints.Map(app, containers, images, volumes, events);
        ContainerEndpoints.Map(app, containers);
        ArchiveEndpoints.Map(app, containers);
        ExecEndpoints.Map(app, containers, execs);
        ImageEndpoints.Map(app, images, containers);
        NetworkEndpoints.Map(app, networks, containers);
        VolumeEndpoints.Map(app, volumes, containers);
        app.MapFallback((HttpContext context) => DockerError.WriteAsync(context, StatusCodes.Status404NotFound, "page not found"));

        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var sockets = listeners.Where(l => l.SocketPath is not null).Select(l => l.SocketPath!).ToList();
        foreach (var socket in sockets)
        {
            File.SetUnixFileMode(socket, options.Group is null ? UnixFileMode.UserRead | UnixFileMode.UserWrite : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
            if (options.Group is not null)
            {
                await PeerCredentials.ChangeGroupAsync(socket, options.Group, cancellationToken).ConfigureAwait(false);
            }
        }

        var addresses = listeners.Select(l => l.SocketPath is { } p ? "unix://" + p : $"tcp://{app.Urls.Select(u => new Uri(u)).First(u => u.Port == l.Endpoint!.Port || l.Endpoint.Port == 0).Authority}").ToList();
        return new DockerApiServer(app, containers, networks, owned, sockets, addresses, stopping);
    }

    /// <summary>The routes a client hijacks with <c>Upgrade: tcp</c>; null for any other.</summary>
    private static HijackHandler? HijackRoute(HijackRequest request, ContainerTable containers, ExecTable execs) =>
        request.Path.Split('/', StringSplitOptions.RemoveEmptyEntries) switch
        {
            ["containers", var id, "attach"] => ContainerEndpoints.Attach(containers.Find(id),
                new ContainerEndpoints.AttachOptions(request.Flag("stdin"), request.Flag("stdout"), request.Flag("stderr"), request.Flag("logs"))),
            ["exec", var id, "start"] => ExecEndpoints.Start(execs.Find(id), ExecEndpoints.Parse(request.Body)),
            _ => null,
        };

    /// <summary>Stops listening, removes every container it made and its sockets.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);   // ends the hijacked streams, which Kestrel does not track
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        }

        await _containers.DisposeAsync().ConfigureAwait(false);
        await _networks.DisposeAsync().ConfigureAwait(false);   // after their members
        await _app.DisposeAsync().ConfigureAwait(false);
        if (_ownedBackend is not null)
        {
            await _ownedBackend.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var socket in _sockets)
        {
            File.Delete(socket);
        }

        _stopping.Dispose();
    }

    /// <summary>One <c>-H</c> address.</summary>
    private sealed record Listener(string? SocketPath, IPEndPoint? Endpoint)
    {
        public static Listener Parse(string host)
        {
            if (host.StartsWith("unix://", StringComparison.Ordinal) && host.Length > "unix://".Length && host[7] == '/')
            {
                return new(host["unix://".Length..], null);
            }

            if (host.StartsWith("tcp://", StringComparison.Ordinal)
                && Uri.TryCreate(host, UriKind.Absolute, out var uri) && IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address))
            {
                if (!IPAddress.IsLoopback(address))
                {
                    throw new ArgumentException($"-H {host}: this server listens on TCP only on loopback (127.0.0.1 or [::1]); serve other machines through SSH forwarding of the unix socket", nameof(host));
                }

                return new(null, new IPEndPoint(address, uri.IsDefaultPort ? 2375 : uri.Port));
            }

            throw new ArgumentException($"-H {host}: give unix:///absolute/path.sock or tcp://127.0.0.1:PORT", nameof(host));
        }
    }
}

/// <summary>
/// Who is on the other end of a unix socket connection (SO_PEERCRED): the owner, root, or a member of the
/// configured group may talk to the server; anyone else is cut off before a byte of HTTP is read.
/// </summary>
internal static class PeerCredentials
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    public static uint OwnUid { get; } = ReadOwnUid();

    public static async Task CheckAsync(ConnectionContext connection, ConnectionDelegate next, int? allowedGid)
    {
        var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
        if (socket is not null && !Allowed(socket, allowedGid))
        {
            connection.Abort();
            return;
        }

        await next(connection).ConfigureAwait(false);
    }

    private static bool Allowed(Socket socket, int? allowedGid)
    {
        Span<byte> cred = stackalloc byte[12];   // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        if (socket.GetRawSocketOption(SolSocket, SoPeerCred, cred) != cred.Length)
        {
            return false;
        }

        var uid = BitConverter.ToUInt32(cred[4..8]);
        var gid = BitConverter.ToUInt32(cred[8..12]);
        return uid == OwnUid || uid == 0 || (allowedGid is { } g && (gid == g || IsMember(uid, g)));
    }

    /// <summary>The gid of a group named in /etc/group.</summary>
    public static int GroupId(string group)
    {
        foreach (var line in File.ReadLines("/etc/group"))
        {
            var f = line.Split(':');
            if (f.Length >= 3 && f[0] == group && int.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
            {
                return gid;
            }
        }

        throw new ArgumentException($"--group {group}: no such group in /etc/group (create it with groupadd {group}, or leave --group out)", nameof(group));
    }

    private static bool IsMember(uint uid, int gid)
    {
        var user = File.ReadLines("/etc/passwd").Select(l => l.Split(':')).FirstOrDefault(f => f.Length > 3 && f[2] == uid.ToString(CultureInfo.InvariantCulture))?[0];
        return user is not null && File.ReadLines("/etc/group").Select(l => l.Split(':'))
            .Any(f => f.Length > 3 && f[2] == gid.ToString(CultureInfo.InvariantCulture) && f[3].Split(',').Contains(user));
    }

    public static async Task ChangeGroupAsync(string path, string group, CancellationToken cancellationToken)
    {
        using var chgrp = System.Diagnostics.Process.Start("chgrp", [group, path]);
        await chgrp.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        if (chgrp.ExitCode != 0)
        {
            throw new InvalidOperationException($"could not give {path} to group {group} (chgrp exited {chgrp.ExitCode})");
        }
    }

    private static uint ReadOwnUid()
    {
        // "Uid: real effective saved fs" in /proc/self/status: the effective uid, without native interop.
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        return uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[2], CultureInfo.InvariantCulture);
    }
}
