using System.Net;
using IsoTest.Modules.Http;
using IsoTest.TestSupport;

namespace IsoTest.Modules.Tests;

/// <summary>
/// The HTTP fake against real busybox httpd: its image by default on both backends (the busybox image that
/// ISOTEST_HTTP_IMAGE names), the host's busybox with FromHost() on the engine.
/// </summary>
public sealed class HttpModuleTests(Backends backends) : IClassFixture<Backends>
{
    private static HttpServerBuilder Site() => new HttpServerBuilder()
        .WithFile("/api/users.json", """[{"id":1,"name":"Ada"}]""")
        .WithScript("echo", "printf 'Content-Type: text/plain\\r\\n\\r\\n%s %s' \"$REQUEST_METHOD\" \"$QUERY_STRING\"");

    [Fact]
    public async Task Engine_Image_ServesFilesScriptsAnd404()
    {
        await using var server = await Site().WithBackend(backends.Engine).StartAsync();

        Assert.Equal(RootFileSystem.FromImage(DebianImages.Busybox), server.Container.Spec.RootFileSystem);
        await AssertServesAsync(server.GetBaseAddress());
    }

    [Fact]
    public async Task Engine_Host_ServesFilesScriptsAnd404()
    {
        await using var server = await Site().FromHost().WithBackend(backends.Engine).StartAsync();

        Assert.Equal(RootFileSystem.Host, server.Container.Spec.RootFileSystem);
        await AssertServesAsync(server.GetBaseAddress());
    }

    [Fact]
    public async Task Docker_Image_ServesFilesScriptsAnd404()
    {
        await using var server = await Site().WithBackend(backends.Docker).StartAsync();

        Assert.Equal(RootFileSystem.FromImage(DebianImages.Busybox), server.Container.Spec.RootFileSystem);
        await AssertServesAsync(server.GetBaseAddress());
    }

    [Fact]
    public async Task Docker_MissingImage_NamesTheImageTheVariableAndFromHost()
    {
        // Docker's own pull fails (nothing listens on port 1); the module's words come with its error.
        var e = await Assert.ThrowsAsync<ImagePullException>(() => Site().WithImage("localhost:1/busybox:1.36").WithBackend(backends.Docker).StartAsync());

        ModuleImageTests.AssertNamesTheFixes(e.Message, "localhost:1/busybox:1.36", HttpServerBuilder.ImageVariable);
    }

    [Fact]
    public void WithFile_BadPath_NamesTheRule()
    {
        var e = Assert.Throws<ArgumentException>(() => new HttpServerBuilder().WithFile("../etc/passwd", "x"));
        Assert.Contains("start with '/'", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new HttpServerBuilder().WithFile("/a/../b", "x"));
        Assert.Throws<ArgumentException>(() => new HttpServerBuilder().WithScript("a/b", "true"));
    }

    private static async Task AssertServesAsync(Uri baseAddress)
    {
        using var http = new HttpClient { BaseAddress = baseAddress };
        Assert.Equal("""[{"id":1,"name":"Ada"}]""", await http.GetStringAsync("api/users.json"));
        Assert.Equal("GET hello=1", await http.GetStringAsync("cgi-bin/echo?hello=1"));
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("missing.html")).StatusCode);
    }
}
