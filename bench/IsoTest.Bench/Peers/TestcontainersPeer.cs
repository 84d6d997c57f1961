using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Configurations;
using DotNet.Testcontainers.Containers;
using DotNet.Testcontainers.Images;
using TcBuilder = DotNet.Testcontainers.Builders.ContainerBuilder;
using TcWait = DotNet.Testcontainers.Builders.Wait;

namespace IsoTest.Bench.Peers;

/// <summary>
/// Testcontainers for .NET (NuGet Testcontainers) against the local dockerd, the way a test uses it:
/// build, StartAsync, wait for the exit code, DisposeAsync. Ryuk (its reaper container) is off: there is
/// no registry to pull it from, and it only adds one container per test run, not per cycle.
/// </summary>
internal sealed class TestcontainersPeer : IPeer
{
    public const string Image = "isotest/busybox:latest";

    public string Name => "Testcontainers";

    public string Notes => $"Testcontainers for .NET {typeof(TcBuilder).Assembly.GetName().Version?.ToString(3)}, Ryuk off; {Image}, --network none, 64 MiB / 0.5 CPU";

    public static void Configure()
    {
        // Read once by Testcontainers' static configuration: set them before its first use.
        Environment.SetEnvironmentVariable("TESTCONTAINERS_RYUK_DISABLED", "true");
        Environment.SetEnvironmentVariable("DOCKER_API_VERSION", Environment.GetEnvironmentVariable("DOCKER_API_VERSION") ?? "1.41");
        Environment.SetEnvironmentVariable("TESTCONTAINERS_HUB_IMAGE_NAME_PREFIX", null);
    }

    public Task PrepareAsync(CancellationToken cancellationToken)
    {
        Configure();
        return Task.CompletedTask;
    }

    public Task CycleAsync(CancellationToken cancellationToken) => CycleAsync(Image, null, cancellationToken);

    /// <summary>One cycle of <paramref name="image"/> on the daemon at <paramref name="endpoint"/> (null: DOCKER_HOST or the default socket).</summary>
    public static async Task CycleAsync(string image, string? endpoint, CancellationToken cancellationToken)
    {
        var builder = new TcBuilder(image);
        if (endpoint is not null)
        {
            builder = builder.WithDockerEndpoint(endpoint);
        }

        var container = builder
            .WithLogger(Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)
            .WithImagePullPolicy(PullPolicy.Missing)
            .WithCommand("/bin/true")
            .WithCreateParameterModifier(p =>
            {
                p.HostConfig!.Memory = 64L << 20;
                p.HostConfig.MemorySwap = 64L << 20;
                p.HostConfig.NanoCPUs = 500_000_000;
                p.HostConfig.NetworkMode = "none";
            })
            // /bin/true exits at once: the default "is running" check would call that a failure.
            .WithWaitStrategy(TcWait.ForUnixContainer().AddCustomWaitStrategy(new Exited(), o => o.WithMode(WaitStrategyMode.OneShot)))
            .Build();
        await using (container)
        {
            await container.StartAsync(cancellationToken);
            var exitCode = await container.GetExitCodeAsync(cancellationToken);
            if (exitCode != 0)
            {
                throw new InvalidOperationException($"/bin/true exited with {exitCode} in Testcontainers container {container.Id} ({endpoint ?? "dockerd"})");
            }
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private sealed class Exited : IWaitUntil
    {
        public Task<bool> UntilAsync(DotNet.Testcontainers.Containers.IContainer container) => Task.FromResult(true);
    }
}
