using StackExchange.Redis;

namespace IsoTest.Examples.Redis;

/// <summary>One fresh Redis per test: [ContainerFixture] on the method.</summary>
public class RedisTests
{
    [Fact, ContainerFixture(typeof(Redis))]
    public async Task Set_then_get_returns_the_value(IContainer redis)
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(Redis.ConnectionString(redis));
        var db = connection.GetDatabase();

        await db.StringSetAsync("greeting", "hello from a container");

        Assert.Equal("hello from a container", (string?)await db.StringGetAsync("greeting"));
    }

    [Fact, ContainerFixture(typeof(PingedRedis))]
    public async Task A_wait_of_ones_own_hands_over_a_server_that_answers(IContainer redis)
    {
        // RedisPingWait (a user-written WaitStrategy) already saw PONG, so the very first command succeeds.
        await using var connection = await ConnectionMultiplexer.ConnectAsync(Redis.ConnectionString(redis));

        Assert.Equal("PONG", (string?)await connection.GetDatabase().ExecuteAsync("PING"));
    }

    // The next two tests write the same key. Were the server shared, whichever runs second would count 2.
    [Fact, ContainerFixture(typeof(Redis))]
    public async Task First_test_starts_from_an_empty_server(IContainer redis) =>
        Assert.Equal(1, await CountVisitAsync(redis, "first"));

    [Fact, ContainerFixture(typeof(Redis))]
    public async Task Second_test_starts_from_an_empty_server_too(IContainer redis) =>
        Assert.Equal(1, await CountVisitAsync(redis, "second"));

    /// <summary>Records a visit and returns how many visits the server has seen, and that only this test's key exists.</summary>
    private static async Task<long> CountVisitAsync(IContainer redis, string visitor)
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync(Redis.ConnectionString(redis));
        var db = connection.GetDatabase();
        await db.StringSetAsync($"visitor:{visitor}", visitor);
        var visits = await db.StringIncrementAsync("visits");

        var server = connection.GetServer(connection.GetEndPoints().Single());
        var keys = server.Keys(pattern: "visitor:*").Select(k => (string)k!).ToArray();
        Assert.Equal([$"visitor:{visitor}"], keys);
        return visits;
    }
}
