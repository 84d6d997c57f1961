namespace IsoTest.Examples.Redis;

/// <summary>
/// The redis-server installed on this machine (Debian's redis-server package), in a container of its own:
/// no image, no persistence, 64 MB and half a core.
/// </summary>
public sealed class Redis : ContainerDefinition
{
    public const int Port = 6379;

    public override ContainerBuilder Configure(ContainerBuilder builder) => builder
        .FromHost()
        // Every container has its own network namespace, so each may listen on 6379; tests reach it through GetEndpoint.
        .WithCommand("redis-server", "--port", $"{Port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
        .WithMemoryLimit("64m")
        .WithCpuLimit(0.5)
        .WithPort(Port)
        .WaitFor(Wait.ForLogMessage("Ready to accept connections"));

    /// <summary>A StackExchange.Redis configuration string for the container.</summary>
    public static string ConnectionString(IContainer redis) => $"{redis.GetEndpoint(Port)},abortConnect=false";
}
