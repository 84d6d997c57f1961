using System.Text.Json.Nodes;
using IsoTest.Engine.Images;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Images;

/// <summary>
/// The image config's remaining defaults on the engine: ExposedPorts published, Labels under the spec's,
/// StopSignal sent by StopAsync, and the Healthcheck run through exec (interval, timeout, retries, start
/// period) as <c>Wait.ForHealthcheck()</c> sees it. Images are OCI layouts run with FromImageArchive.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class ImageDefaultsTests : IAsyncLifetime
{
    private const long Ms = 1_000_000; // image config durations are nanoseconds

    private readonly string _dir = Directory.CreateTempSubdirectory("isotest-imagedefaults-").FullName;
    private EngineBackend _engine = null!;

    public Task InitializeAsync()
    {
        _engine = new EngineBackend();
        var store = new ImageStore(Path.Combine(_dir, "store"));
        _engine.Images = new Lazy<ImageService>(() => new ImageService(store, DockerCredentials.None, new RegistrySettings(new HashSet<string>(), [])));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _engine.DisposeAsync();
        ImageStore.RemoveTree(_dir);
    }

    /// <summary>busybox with <paramref name="config"/>; its command serves /www on 8080, traps USR1 and TERM, and makes /tmp/ready after <paramref name="readyAfter"/>.</summary>
    private string Image(string name, JsonObject config, double readyAfter = 0.3)
    {
        var busybox = File.ReadAllBytes("/bin/busybox");
        var layer = new LayerBuilder().Dir("bin").Bytes("bin/busybox", busybox, 0x1ED);
        foreach (var applet in new[] { "sh", "sleep", "touch", "test", "echo", "httpd", "cat", "false" })
        {
            layer.Symlink("bin/" + applet, "/bin/busybox");
        }

        layer.Dir("etc").File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n").File("etc/group", "root:x:0:\n")
            .Dir("www").File("www/index.html", "served from the image").Dir("tmp", 0x3FF);
        config["Env"] = new JsonArray("PATH=/bin");
        config["Entrypoint"] = new JsonArray("/bin/sh", "-c");
        config["Cmd"] = new JsonArray(
            "trap 'echo got-usr1; exit 0' USR1; trap 'echo got-term; exit 3' TERM; httpd -p 8080 -h /www; " +
            $"(sleep {readyAfter.ToString(System.Globalization.CultureInfo.InvariantCulture)}; touch /tmp/ready) & echo started; while :; do sleep 0.05; done");
        var layout = Path.Combine(_dir, name);
        OciLayout.Write(layout, "v1", new TestImage([(layer.Tar(), Compression.Gzip)], config, TestImage.HostArchitecture));
        return layout;
    }

    private static JsonObject Health(string[] test, long intervalMs, int retries, long startPeriodMs = 0, long timeoutMs = 2000) => new()
    {
        ["Test"] = new JsonArray([.. test.Select(t => (JsonNode)t)]),
        ["Interval"] = intervalMs * Ms,
        ["Timeout"] = timeoutMs * Ms,
        ["StartPeriod"] = startPeriodMs * Ms,
        ["Retries"] = retries,
    };

    private ContainerBuilder Builder(string layout) => new ContainerBuilder().WithBackend(_engine).FromImageArchive(layout);

    [Fact]
    public async Task FromImageArchive_ExposedPortsPublishedAndLabelsUnderTheSpecs()
    {
        var layout = Image("ports", new JsonObject
        {
            ["ExposedPorts"] = new JsonObject { ["8080/tcp"] = new JsonObject(), ["9090/udp"] = new JsonObject() },
            ["Labels"] = new JsonObject { ["from"] = "image", ["both"] = "image" },
        });
        await using var container = await Builder(layout).WithLabel("both", "spec").WaitFor(Wait.ForLogMessage("started")).StartAsync();

        Assert.Equal([8080], container.Spec.Ports);
        Assert.Equal("image", container.Spec.Labels["from"]);
        Assert.Equal("spec", container.Spec.Labels["both"]);
        // Reached without WithPort: the image exposes it (udp is not forwarded).
        var endpoint = container.GetEndpoint(8080);
        using var http = new HttpClient();
        Assert.Equal("served from the image", await http.GetStringAsync(endpoint.ToUri()));
        Assert.Throws<ArgumentException>(() => { container.GetEndpoint(9090); });
    }

    [Fact]
    public async Task StopAsync_SendsTheImagesStopSignal()
    {
        var layout = Image("stopsignal", new JsonObject { ["StopSignal"] = "SIGUSR1" });
        await using var container = await Builder(layout).WaitFor(Wait.ForLogMessage("started")).StartAsync();
        await container.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, container.ExitCode);
        Assert.Contains(container.GetLogs(), l => l.Text == "got-usr1");

        // Without one, SIGTERM as before.
        await using var plain = await Builder(Image("nostopsignal", new JsonObject())).WaitFor(Wait.ForLogMessage("started")).StartAsync();
        await plain.StopAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(3, plain.ExitCode);
        Assert.Contains(plain.GetLogs(), l => l.Text == "got-term");
    }

    [Fact]
    public async Task WaitForHealthcheck_HealthyOnceTheCheckPasses()
    {
        var layout = Image("healthy", new JsonObject { ["Healthcheck"] = Health(["CMD-SHELL", "test -e /tmp/ready && echo ok"], 100, 50) });
        await using var container = await Builder(layout).WaitFor(Wait.ForHealthcheck().WithTimeout(TimeSpan.FromSeconds(30))).StartAsync();

        var health = await ((IContainerHealth)container).GetHealthAsync();
        Assert.Equal(HealthStatus.Healthy, health.Status);
        Assert.Equal("ok", health.LastOutput);
        Assert.Equal(["/bin/sh", "-c", "test -e /tmp/ready && echo ok"], ((IContainerHealth)container).Healthcheck!.Command);
        Assert.Equal(0, (await container.ExecAsync(["test", "-e", "/tmp/ready"])).ExitCode);
    }

    [Fact]
    public async Task WaitForHealthcheck_UnhealthyAfterRetriesFailsTheWait()
    {
        var layout = Image("unhealthy", new JsonObject { ["Healthcheck"] = Health(["CMD", "/bin/sh", "-c", "echo not-yet; exit 1"], 50, 2) });
        var e = await Assert.ThrowsAsync<ContainerStartException>(() => Builder(layout).WaitFor(Wait.ForHealthcheck().WithTimeout(TimeSpan.FromSeconds(30))).StartAsync());
        Assert.Contains("became unhealthy", e.Message, StringComparison.Ordinal);
        Assert.Contains("failed 2 times", e.Message, StringComparison.Ordinal);
        Assert.Contains("not-yet", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WaitForHealthcheck_FailuresInTheStartPeriodDoNotCount()
    {
        // Ready after 1.5 s, checked every 50 ms with 1 retry: unhealthy at once without the start period.
        var withPeriod = Image("startperiod", new JsonObject { ["Healthcheck"] = Health(["CMD", "test", "-e", "/tmp/ready"], 50, 1, startPeriodMs: 20_000) }, readyAfter: 1.5);
        await using var container = await Builder(withPeriod).WaitFor(Wait.ForHealthcheck().WithTimeout(TimeSpan.FromSeconds(30))).StartAsync();
        Assert.Equal(HealthStatus.Healthy, (await ((IContainerHealth)container).GetHealthAsync()).Status);

        var without = Image("nostartperiod", new JsonObject { ["Healthcheck"] = Health(["CMD", "test", "-e", "/tmp/ready"], 50, 1) }, readyAfter: 1.5);
        var e = await Assert.ThrowsAsync<ContainerStartException>(() => Builder(without).WaitFor(Wait.ForHealthcheck().WithTimeout(TimeSpan.FromSeconds(30))).StartAsync());
        Assert.Contains("became unhealthy", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WaitForHealthcheck_CheckOutlivingItsTimeoutFails()
    {
        var layout = Image("slowcheck", new JsonObject { ["Healthcheck"] = Health(["CMD", "sleep", "5"], 50, 1, timeoutMs: 200) });
        var e = await Assert.ThrowsAsync<ContainerStartException>(() => Builder(layout).WaitFor(Wait.ForHealthcheck().WithTimeout(TimeSpan.FromSeconds(30))).StartAsync());
        Assert.Contains("longer than its timeout", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WaitForHealthcheck_ImageWithoutOneSaysSo()
    {
        var layout = Image("nohealth", new JsonObject { ["Healthcheck"] = new JsonObject { ["Test"] = new JsonArray("NONE") } });
        var e = await Assert.ThrowsAsync<ContainerStartException>(() => Builder(layout).WaitFor(Wait.ForHealthcheck()).StartAsync());
        Assert.Contains("defines no HEALTHCHECK", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FromImageArchive_MissingOrBadArchiveIsRefused()
    {
        var missing = Assert.Throws<InvalidContainerSpecException>(() => Builder(Path.Combine(_dir, "nope.tar")).WithCommand("true").Build());
        Assert.Contains("FromImageArchive", missing.Message, StringComparison.Ordinal);

        var junk = Path.Combine(_dir, "junk.tar");
        await File.WriteAllTextAsync(junk, "not an archive");
        await Assert.ThrowsAnyAsync<ImagePullException>(() => Builder(junk).StartAsync());
    }

    [Fact]
    public async Task UnknownStopSignalIsAnImageError()
    {
        var layout = Image("badsignal", new JsonObject { ["StopSignal"] = "SIGNOPE" });
        var e = await Assert.ThrowsAnyAsync<ImagePullException>(() => Builder(layout).StartAsync());
        Assert.Contains("SIGNOPE", e.Message, StringComparison.Ordinal);
    }
}
