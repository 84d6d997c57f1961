using System.Net;

namespace IsoTest.Examples.Http;

/// <summary>
/// One web server shared by every test of this class: [ContainerFixture] on the class, the container arrives through
/// the constructor. It starts before the first test and is removed after the last one.
/// The one example that also runs on Docker: <c>ISOTEST_BACKEND=docker dotnet test --filter Backend=Docker</c>.
/// </summary>
[ContainerFixture(typeof(StaticSite))]
[Trait("Backend", "Docker")]
public sealed class StaticSiteTests(IContainer site) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = site.GetEndpoint(StaticSite.Port).ToUri() };

    [Fact]
    public async Task Index_page_is_served_as_html()
    {
        using var response = await _http.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Hello from busybox httpd", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Other_pages_are_served_too()
    {
        var body = await _http.GetStringAsync("/about.html");

        Assert.Contains("reached through GetEndpoint", body);
    }

    [Fact]
    public async Task Cgi_script_answers_with_the_query()
    {
        var body = await _http.GetStringAsync("/cgi-bin/greet?world");

        Assert.Equal("hello, world\n", body);
    }

    [Fact]
    public async Task Missing_page_is_404()
    {
        using var response = await _http.GetAsync("/no-such-page.html");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    public void Dispose() => _http.Dispose();
}
