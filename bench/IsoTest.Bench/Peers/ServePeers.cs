using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Configurations;
using DotNet.Testcontainers.Containers;
using DotNet.Testcontainers.Images;
using IsoTest.Server;
using TcBuilder = DotNet.Testcontainers.Builders.ContainerBuilder;
using TcWait = DotNet.Testcontainers.Builders.Wait;

namespace IsoTest.Bench.Peers;

/// <summary>
/// <c>isotest serve</c> for a peer: the engine behind the Docker API on a unix socket in a temp directory, with an image
/// store of its own, in this process (as `isotest serve` hosts it). Its image <c>isotest/host</c> is the host's root,
/// read-only behind a private layer: the same root the in-process engine peer runs.
/// </summary>
internal sealed class ServeHost : IAsyncDisposable
{
    public const string Image = "isotest/host";

    private readonly string _directory;
    private readonly DockerApiServer _server;

    private ServeHost(string directory, DockerApiServer server)
    {
        _directory = directory;
        _server = server;
    }

    /// <summary>For DOCKER_HOST and Testcontainers' WithDockerEndpoint.</summary>
    public string DockerHost => "unix://" + Path.Combine(_directory, "docker.sock");

    public static async Task<ServeHost> StartAsync(CancellationToken cancellationToken)
    {
        var directory = Directory.CreateTempSubdirectory("isotest-bench-serve-").FullName;
        try
        {
            var server = await DockerApiServer.StartAsync(
                new DockerApiServerOptions { Hosts = ["unix://" + Path.Combine(directory, "docker.sock")], ImageStore = Path.Combine(directory, "images") },
                cancellationToken);
            return new ServeHost(directory, server);
        }
        catch
        {
            Directory.Delete(directory, recursive: true);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>
/// Testcontainers for .NET, unchanged, against <c>isotest serve</c>: the same builder as its row against dockerd, for the
/// cycle (<see cref="ForCycle"/>, as <see cref="TestcontainersPeer"/>) or the server fixture (<see cref="ForServerFixture"/>,
/// as <see cref="TestcontainersServerPeer"/>).
/// </summary>
internal sealed class TestcontainersServePeer : IPeer
{
    private readonly Func<string, string, CancellationToken, Task> _cycle;
    private ServeHost? _serve;

    private TestcontainersServePeer(string what, Func<string, string, CancellationToken, Task> cycle)
    {
        Notes = $"Testcontainers for .NET {typeof(TcBuilder).Assembly.GetName().Version?.ToString(3)}, Ryuk off, WithDockerEndpoint(isotest serve's socket, in this process); {ServeHost.Image} {what}";
        _cycle = cycle;
    }

    public static TestcontainersServePeer ForCycle() => new("(the host's root), --network none, 64 MiB / 0.5 CPU", TestcontainersPeer.CycleAsync);

    public static TestcontainersServePeer ForServerFixture() =>
        new("(the host's root, its /bin/busybox), the same builder as the Testcontainers row", TestcontainersServerPeer.CycleAsync);

    public string Name => "Testcontainers → isotest serve";

    public string Notes { get; }

    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        TestcontainersPeer.Configure();
        _serve = await ServeHost.StartAsync(cancellationToken);
    }

    public Task CycleAsync(CancellationToken cancellationToken) =>
        _cycle(ServeHost.Image, (_serve ?? throw new InvalidOperationException("not prepared")).DockerHost, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_serve is not null)
        {
            await _serve.DisposeAsync();
            _serve = null;
        }
    }
}

/// <summary><c>docker run --rm</c> (the real CLI) against <c>isotest serve</c>: the same command as <see cref="DockerPeer"/>.</summary>
internal sealed class DockerServePeer : IPeer
{
    private ServeHost? _serve;
    private Dictionary<string, string> _environment = [];

    public string Name => "docker run --rm → isotest serve";

    public string Notes => $"the docker CLI with DOCKER_HOST=isotest serve's socket (in this process), API negotiated; {ServeHost.Image} (the host's root), --network none";

    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (Shell.Which("docker") is null)
        {
            throw new PeerUnavailableException("docker CLI not found: apt-get install docker.io");
        }

        _serve = await ServeHost.StartAsync(cancellationToken);
        // Negotiated from /_ping as against dockerd; a config directory of its own so no context or auth of the machine applies.
        _environment = new Dictionary<string, string> { ["DOCKER_HOST"] = _serve.DockerHost, ["DOCKER_API_VERSION"] = "", ["DOCKER_CONTEXT"] = "" };
    }

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var run = await Shell.RunAsync("docker", ["run", "--rm", "--network", "none", "--memory", "64m", "--cpus", "0.5", ServeHost.Image, "/bin/true"], _environment, cancellationToken);
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException($"docker run (isotest serve) exited with {run.ExitCode}: {run.Tail}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_serve is not null)
        {
            await _serve.DisposeAsync();
            _serve = null;
        }
    }
}
