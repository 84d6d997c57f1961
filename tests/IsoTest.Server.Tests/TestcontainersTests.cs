using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;

namespace IsoTest.Server.Tests;

/// <summary>
/// Testcontainers for .NET (the NuGet package, unchanged) against `isotest serve`, with its resource reaper
/// on: the server speaks Ryuk's protocol itself.
/// </summary>
public sealed class TestcontainersTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task GenericContainer_StartsWaitsPublishesExecsAndIsRemoved()
    {
        var container = new DotNet.Testcontainers.Builders.ContainerBuilder("isotest/host")
            .WithDockerEndpoint(server.DockerHost)
            .WithCommand("sh", "-c", "echo ready; exec busybox httpd -f -p 8080 -h /etc")
            .WithPortBinding(8080, assignRandomHostPort: true)
            .WithLabel("suite", "testcontainers")
            .WithWaitStrategy(DotNet.Testcontainers.Builders.Wait.ForUnixContainer().UntilMessageIsLogged("ready"))
            .Build();
        await container.StartAsync();
        string id;
        try
        {
            id = container.Id;
            Assert.Equal(TestcontainersStates.Running, container.State);
            using var http = new HttpClient();
            var body = await Retry(() => http.GetStringAsync($"http://{container.Hostname}:{container.GetMappedPublicPort(8080)}/hostname"));
            Assert.Equal(File.ReadAllText("/etc/hostname"), body);

            var exec = await container.ExecAsync(["sh", "-c", "echo from-exec; exit 3"]);
            Assert.Equal(3, exec.ExitCode);
            Assert.Equal("from-exec\n", exec.Stdout);

            var (stdout, _) = await container.GetLogsAsync();
            Assert.Contains("ready", stdout);
        }
        finally
        {
            await container.DisposeAsync();
        }

        var (code, listed, _) = await server.DockerAsync("ps", "-a", "--filter", $"id={id}", "--format", "{{.ID}}");
        Assert.Equal(0, code);
        Assert.Equal("", listed.Trim());
        var (_, reaper, _) = await server.DockerAsync("ps", "--filter", "name=testcontainers-ryuk", "--format", "{{.Names}} {{.Status}}");
        Assert.StartsWith("testcontainers-ryuk-", reaper.Trim());
    }

    private static async Task<T> Retry<T>(Func<Task<T>> attempt)
    {
        for (var i = 0; ; i++)
        {
            try
            {
                return await attempt();
            }
            catch (HttpRequestException) when (i < 100)
            {
                await Task.Delay(50);
            }
        }
    }
}
