using StackExchange.Redis;

namespace IsoTest.Examples.Network;

/// <summary>
/// The two-container test to copy: a network, a database on it by alias, an app on it that uses the alias. Declare the
/// network first with <c>await using</c>, so it is disposed after its containers. Runs on both backends:
/// <c>ISOTEST_BACKEND=docker dotnet test --filter Backend=Docker</c>.
/// </summary>
[Trait("Backend", "Docker")]
public sealed class VisitCounterTests
{
    [Fact]
    public async Task Web_service_counts_visits_in_redis_reached_by_alias()
    {
        await using var network = await new NetworkBuilder().BuildAsync();
        await using var redis = await VisitCounter.Redis(network).StartAsync();
        await using var web = await VisitCounter.Web(network).StartAsync();
        using var http = new HttpClient { BaseAddress = web.GetEndpoint(VisitCounter.WebPort).ToUri() };

        var first = await http.GetStringAsync("/cgi-bin/visit");
        var second = await http.GetStringAsync("/cgi-bin/visit");

        // WaitFor's probe visited once already: what matters is that each visit counts one up, in Redis.
        Assert.Matches(@"^visits: \d+\n$", first);
        Assert.Equal(Count(first) + 1, Count(second));
        await using var direct = await ConnectionMultiplexer.ConnectAsync($"{redis.GetEndpoint(VisitCounter.RedisPort)},abortConnect=false");
        Assert.Equal(Count(second), (long)await direct.GetDatabase().StringGetAsync("visits"));
    }

    [Fact]
    public async Task Web_service_on_another_network_cannot_reach_redis()
    {
        await using var network = await new NetworkBuilder().BuildAsync();
        await using var elsewhere = await new NetworkBuilder().BuildAsync();
        await using var redis = await VisitCounter.Redis(network).StartAsync();
        await using var web = await VisitCounter.Web(elsewhere).StartAsync();
        using var http = new HttpClient { BaseAddress = web.GetEndpoint(VisitCounter.WebPort).ToUri() };

        // The alias means nothing on the other network: the script gets no answer and shows no count.
        Assert.Equal("visits: \n", await http.GetStringAsync("/cgi-bin/visit"));
    }

    private static long Count(string page) => long.Parse(page["visits: ".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
}
