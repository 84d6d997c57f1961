using System.Diagnostics;
using System.Globalization;
using DotNet.Testcontainers.Builders;
using IsoTest.Docker;
using IsoTestBuilder = IsoTest.ContainerBuilder;
using IsoTestWait = IsoTest.Wait;
using TcBuilder = DotNet.Testcontainers.Builders.ContainerBuilder;
using TcWait = DotNet.Testcontainers.Builders.Wait;

namespace IsoTest.Bench.Peers;

/// <summary>IsoTest's engine: FromDirectory(busybox root), Wait.ForHttp, one GET, dispose.</summary>
internal sealed class EngineServerPeer(string rootfs) : IPeer
{
    private IsoTestBuilder? _builder;
    private IContainerBackend? _backend;

    public string Name => "IsoTest engine";

    public string Notes => "in-process EngineBackend, FromDirectory(busybox root), Wait.ForHttp(\"/\", 8080)";

    public Dictionary<string, List<double>> Phases { get; } = new() { ["ready (create + start + Wait.ForHttp)"] = [], ["request"] = [], ["dispose"] = [] };

    private bool _record;

    public Task PrepareAsync(CancellationToken cancellationToken)
    {
        _backend = IsoTest.Engine.EngineBackend.Create();
        _builder = new IsoTestBuilder()
            .FromDirectory(rootfs)
            .WithCommand(ServerBenchmark.HttpdCommand)
            .WithMemoryLimit(64L << 20).WithCpuLimit(0.5)
            .WithPort(ServerBenchmark.Port)
            .WaitFor(IsoTestWait.ForHttp("/", ServerBenchmark.Port))
            .WithBackend(_backend);
        return Task.CompletedTask;
    }

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var t0 = Stopwatch.GetTimestamp();
        var container = await _builder!.StartAsync(cancellationToken);
        var t1 = Stopwatch.GetTimestamp();
        try
        {
            await ServerBenchmark.GetIndexAsync(new Uri(container.GetEndpoint(ServerBenchmark.Port).ToUri(), "/index.html"), cancellationToken);
        }
        finally
        {
            var t2 = Stopwatch.GetTimestamp();
            await container.DisposeAsync();
            if (_record)
            {
                Phases["ready (create + start + Wait.ForHttp)"].Add(Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
                Phases["request"].Add(Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
                Phases["dispose"].Add(Stopwatch.GetElapsedTime(t2).TotalMilliseconds);
            }
        }

        _record = true;
    }

    public async ValueTask DisposeAsync()
    {
        if (_backend is not null)
        {
            await _backend.DisposeAsync();
            _backend = null;
        }
    }
}

/// <summary>IsoTest's Docker backend: FromImage(isotest/busybox), the index file copied in, Wait.ForHttp.</summary>
internal sealed class IsoTestDockerServerPeer : IPeer
{
    private IsoTestBuilder? _builder;
    private DockerBackend? _backend;
    private string _apiVersion = "?";

    public string Name => "IsoTest Docker backend";

    public string Notes => $"DockerBackend (API {_apiVersion}), FromImage({TestcontainersPeer.Image}) + WithFile(/www/index.html), Wait.ForHttp";

    public Task PrepareAsync(CancellationToken cancellationToken)
    {
        _backend = new DockerBackend(new DockerBackendOptions { PullPolicy = ImagePullPolicy.Missing });
        _builder = new IsoTestBuilder()
            .FromImage(TestcontainersPeer.Image)
            .WithCommand(ServerBenchmark.HttpdCommand)
            .WithFile("/www/index.html", BusyboxRootFs.Index)
            .WithMemoryLimit(64L << 20).WithCpuLimit(0.5)
            .WithPort(ServerBenchmark.Port)
            .WaitFor(IsoTestWait.ForHttp("/", ServerBenchmark.Port))
            .WithBackend(_backend);
        return Task.CompletedTask;
    }

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var container = await _builder!.StartAsync(cancellationToken);
        await using (container)
        {
            await ServerBenchmark.GetIndexAsync(new Uri(container.GetEndpoint(ServerBenchmark.Port).ToUri(), "/index.html"), cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_backend is not null)
        {
            _apiVersion = _backend.ApiVersion?.ToString() ?? "?";
            await _backend.DisposeAsync();
            _backend = null;
        }
    }
}

/// <summary>Testcontainers: WithResourceMapping for the index, random host port, its own HTTP wait strategy.</summary>
internal sealed class TestcontainersServerPeer : IPeer
{
    private static readonly byte[] Index = System.Text.Encoding.UTF8.GetBytes(BusyboxRootFs.Index);

    public string Name => "Testcontainers";

    public string Notes => $"Testcontainers for .NET {typeof(TcBuilder).Assembly.GetName().Version?.ToString(3)}, Ryuk off; WithResourceMapping(/www/index.html), WithPortBinding(8080, true), UntilHttpRequestIsSucceeded";

    public Task PrepareAsync(CancellationToken cancellationToken)
    {
        TestcontainersPeer.Configure();
        return Task.CompletedTask;
    }

    public Task CycleAsync(CancellationToken cancellationToken) => CycleAsync(TestcontainersPeer.Image, null, cancellationToken);

    /// <summary>One fixture of <paramref name="image"/> on the daemon at <paramref name="endpoint"/> (null: DOCKER_HOST or the default socket).</summary>
    public static async Task CycleAsync(string image, string? endpoint, CancellationToken cancellationToken)
    {
        var builder = new TcBuilder(image);
        if (endpoint is not null)
        {
            builder = builder.WithDockerEndpoint(endpoint);
        }

        var container = builder
            .WithLogger(Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)
            .WithImagePullPolicy(DotNet.Testcontainers.Images.PullPolicy.Missing)
            .WithCommand(ServerBenchmark.HttpdCommand)
            .WithResourceMapping(Index, "/www/index.html")
            .WithPortBinding(ServerBenchmark.Port, assignRandomHostPort: true)
            .WithCreateParameterModifier(p =>
            {
                p.HostConfig!.Memory = 64L << 20;
                p.HostConfig.MemorySwap = 64L << 20;
                p.HostConfig.NanoCPUs = 500_000_000;
            })
            .WithWaitStrategy(TcWait.ForUnixContainer().UntilHttpRequestIsSucceeded(r => r.ForPort(ServerBenchmark.Port).ForPath("/")))
            .Build();
        await using (container)
        {
            await container.StartAsync(cancellationToken);
            var uri = new Uri($"http://{container.Hostname}:{container.GetMappedPublicPort(ServerBenchmark.Port)}/index.html");
            await ServerBenchmark.GetIndexAsync(uri, cancellationToken);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>
/// The docker CLI as a shell script would do it: <c>docker run -d -p 127.0.0.1::8080</c>, <c>docker port</c>,
/// poll GET until it answers, one GET, <c>docker rm -f</c>. The index is written by the container's shell
/// (no copy step), which favours this peer slightly.
/// </summary>
internal sealed class DockerRunServerPeer : IPeer
{
    private static readonly Dictionary<string, string> Env = new() { ["DOCKER_API_VERSION"] = Environment.GetEnvironmentVariable("DOCKER_API_VERSION") ?? "1.41" };
    private readonly List<string> _live = [];

    public string Name => "docker run -d -p";

    public string Notes => "docker CLI: run -d -p 127.0.0.1::8080 (sh writes the index, execs httpd), docker port, poll GET (1→50 ms backoff), rm -f";

    public Task PrepareAsync(CancellationToken cancellationToken) =>
        Shell.Which("docker") is null ? throw new PeerUnavailableException("docker CLI not found: apt-get install docker.io") : Task.CompletedTask;

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var script = $"mkdir -p /www && printf '%s' '{BusyboxRootFs.Index.TrimEnd('\n')}\n' >/www/index.html && exec {string.Join(' ', ServerBenchmark.HttpdCommand)}";
        var run = await Shell.RunAsync("docker", ["run", "-d", "--label", "isotest-bench=1", "-p", $"127.0.0.1::{ServerBenchmark.Port}", "--memory", "64m", "--cpus", "0.5", TestcontainersPeer.Image, "/bin/sh", "-c", script], Env, cancellationToken);
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException($"docker run exited with {run.ExitCode}: {run.Tail}");
        }

        var id = run.Stdout.Trim();
        _live.Add(id);
        try
        {
            var port = await Shell.RunAsync("docker", ["port", id, ServerBenchmark.Port.ToString(CultureInfo.InvariantCulture)], Env, cancellationToken);
            var uri = new Uri($"http://{port.Stdout.Split('\n')[0].Trim()}/index.html");
            var delay = 1;
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await ServerBenchmark.GetIndexAsync(uri, cancellationToken);
                    break;
                }
                catch (Exception e) when (e is HttpRequestException or InvalidOperationException && attempt < 200)
                {
                    await Task.Delay(delay, cancellationToken);
                    delay = Math.Min(delay * 2, 50);
                }
            }

            await ServerBenchmark.GetIndexAsync(uri, cancellationToken);
        }
        finally
        {
            await Shell.RunAsync("docker", ["rm", "-f", id], Env, CancellationToken.None);
            _live.Remove(id);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_live.Count > 0)
        {
            await Shell.RunAsync("docker", ["rm", "-f", .. _live], Env, CancellationToken.None);
        }
    }
}
