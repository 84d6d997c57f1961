using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace IsoTest.Server.Tests;

/// <summary>The API as raw HTTP: dockerd's headers, versions, error bodies; bad input never takes the server down.</summary>
public sealed class ApiTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private HttpClient Client()
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(server.Socket), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://docker/") };
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("HEAD")]
    public async Task Ping_AnswersWithDockersHeaders(string method)
    {
        using var client = Client();
        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), "_ping"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("1.44", response.Headers.GetValues("Api-Version").Single());
        Assert.Equal("linux", response.Headers.GetValues("Ostype").Single());
        Assert.Equal("false", response.Headers.GetValues("Docker-Experimental").Single());
        Assert.StartsWith("IsoTest/", string.Join(' ', response.Headers.GetValues("Server")));
        Assert.Equal(method == "GET" ? "OK" : "", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("v1.23", "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version")]
    [InlineData("v1.99", "client version 1.99 is too new. Maximum supported API version is 1.44")]
    public async Task Version_OutsideTheRange_IsRefusedWithDockersWords(string prefix, string message)
    {
        using var client = Client();
        using var response = await client.GetAsync($"{prefix}/containers/json");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(message, Message(await response.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task Versioned_AndUnversioned_RoutesBothAnswer()
    {
        using var client = Client();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("v1.24/containers/json")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("containers/json")).StatusCode);
    }

    [Fact]
    public async Task UnknownEndpoint_Is404PageNotFound()
    {
        using var client = Client();
        using var response = await client.GetAsync("v1.44/no/such/thing");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("page not found", Message(await response.Content.ReadAsStringAsync()));
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("{\"Image\": 42}")]
    [InlineData("[1,2,3]")]
    public async Task Create_WithMalformedJson_Is400AndTheServerKeepsServing(string body)
    {
        using var client = Client();
        using var response = await client.PostAsync("v1.44/containers/create", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith("invalid JSON", Message(await response.Content.ReadAsStringAsync()));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("_ping")).StatusCode);
    }

    [Fact]
    public async Task Create_WithUnknownFields_IgnoresThem()
    {
        using var client = Client();
        using var response = await client.PostAsync("v1.44/containers/create",
            new StringContent("""{"Image":"isotest/host","Cmd":["true"],"SomethingNew":{"x":1},"HostConfig":{"AlsoNew":true}}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var id = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("Id").GetString();
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"v1.44/containers/{id}?force=1")).StatusCode);
    }

    [Fact]
    public async Task Create_WithTakenName_Is409AndTheFirstContainerStays()
    {
        using var client = Client();
        var name = $"taken-{Guid.NewGuid():N}";
        var body = """{"Image":"isotest/host","Cmd":["true"]}""";
        using var first = await client.PostAsync($"v1.44/containers/create?name={name}", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        using var second = await client.PostAsync($"v1.44/containers/create?name={name}", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.Contains($"The container name \"/{name}\" is already in use", Message(await second.Content.ReadAsStringAsync()));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"v1.44/containers/{name}/json")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"v1.44/containers/{name}")).StatusCode);
    }

    [Fact]
    public async Task Create_WithBadSpec_NamesTheProblemAndLeavesNothing()
    {
        using var client = Client();
        var name = $"bad-{Guid.NewGuid():N}";
        using var response = await client.PostAsync($"v1.44/containers/create?name={name}",
            new StringContent("""{"Image":"isotest/host","Cmd":["true"],"HostConfig":{"Binds":["/no/such/dir/here:/data"]}}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("/no/such/dir/here", Message(await response.Content.ReadAsStringAsync()));
        using var list = await client.GetAsync($"v1.44/containers/json?all=1&filters=%7B%22name%22%3A%5B%22{name}%22%5D%7D");
        Assert.Equal("[]", await list.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Inspect_OfAnUnknownContainer_Is404NoSuchContainer()
    {
        using var client = Client();
        using var response = await client.GetAsync("v1.44/containers/does-not-exist/json");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("No such container: does-not-exist", Message(await response.Content.ReadAsStringAsync()));
    }

    private static string? Message(string json) => JsonDocument.Parse(json).RootElement.GetProperty("message").GetString();
}
