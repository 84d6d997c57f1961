using IsoTest.Docker;

namespace IsoTest.Examples.Network;

/// <summary>
/// Two containers on one network: a web service (busybox httpd with a CGI script) that counts visits in Redis, which it
/// reaches by the alias <c>cache</c> on Redis's own port. Redis publishes nothing for the web service; the network is the
/// only way between them. The same definitions run on both backends.
/// </summary>
public static class VisitCounter
{
    public const int WebPort = 8080;
    public const int RedisPort = 6379;
    public const string RedisAlias = "cache";

    /// <summary>Redis on <paramref name="network"/> as <see cref="RedisAlias"/>, listening on every address of the container (the network's too).</summary>
    public static ContainerBuilder Redis(INetwork network) =>
        OnThisMachinesPrograms(new ContainerBuilder())
            .WithCommand("/usr/bin/redis-server", "--port", $"{RedisPort}", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no")
            .WithNetwork(network)
            .WithNetworkAliases(RedisAlias)
            .WithMemoryLimit("64m")
            .WithPort(RedisPort) // for the test to look inside; the web service does not use it
            .WaitFor(Wait.ForLogMessage("Ready to accept connections"));

    /// <summary>The web service on <paramref name="network"/>: every GET of /cgi-bin/visit increments <c>visits</c> in Redis and shows it.</summary>
    public static ContainerBuilder Web(INetwork network) =>
        (ContainerBackends.Default is DockerBackend ? new ContainerBuilder().FromImage(Http.StaticSite.DockerImage) : new ContainerBuilder().FromHost())
            .WithCommand("busybox", "httpd", "-f", "-v", "-p", $"{WebPort}", "-h", "/www")
            // Redis's text protocol over nc: INCR answers ":<n>", QUIT makes Redis close, so nc ends.
            .WithFile("/www/cgi-bin/visit",
                "#!/bin/sh\n" +
                $"n=$(printf 'INCR visits\\r\\nQUIT\\r\\n' | busybox nc {RedisAlias} {RedisPort} | head -n1 | tr -d ':\\r')\n" +
                "printf 'Content-Type: text/plain\\r\\n\\r\\nvisits: %s\\n' \"$n\"\n",
                mode: (UnixFileMode)Convert.ToInt32("755", 8))
            .WithNetwork(network)
            .WithMemoryLimit("32m")
            .WithPort(WebPort)
            .WaitFor(Wait.ForHttp("/cgi-bin/visit", WebPort));

    /// <summary>
    /// The built-in engine runs this machine's redis-server as it is. Docker cannot see the host's files: the busybox image
    /// gets the host's /usr and libraries bound read-only instead (there is no registry to pull redis:7 from here).
    /// </summary>
    private static ContainerBuilder OnThisMachinesPrograms(ContainerBuilder builder) =>
        ContainerBackends.Default is DockerBackend
            ? builder.FromImage(Http.StaticSite.DockerImage)
                .WithBindMount("/usr", "/usr", readOnly: true)
                .WithBindMount("/lib", "/lib", readOnly: true)
                .WithBindMount("/lib64", "/lib64", readOnly: true)
            : builder.FromHost();
}
