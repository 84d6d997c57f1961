using IsoTest.Modules.Redis;
using Npgsql;
using StackExchange.Redis;

namespace IsoTest.Examples.Modules;

/// <summary>The modules: a fresh PostgreSQL database per test from a definition, and a Redis started in the test itself.</summary>
[Collection(nameof(Images.LocalImagesCollection))]
public class ShopDatabaseTests
{
    // Both tests create the same table: each has a database of its own, made from the template without an initdb.
    [Fact, ContainerFixture(typeof(ShopDatabase))]
    public async Task First_order_is_number_one(IContainer postgres) =>
        Assert.Equal(1, await PlaceOrderAsync(ShopDatabase.Module.GetConnectionString(postgres), "tea"));

    [Fact, ContainerFixture(typeof(ShopDatabase))]
    public async Task First_order_is_number_one_in_another_test_too(IContainer postgres) =>
        Assert.Equal(1, await PlaceOrderAsync(ShopDatabase.Module.GetConnectionString(postgres), "cake"));

    [Fact]
    public async Task Redis_module_started_in_the_test()
    {
        // As in Testcontainers: build, start, use the connection string, dispose. (With a registry: new RedisBuilder().)
        await using var redis = await new RedisBuilder().WithImage("isotest/redis:7-bookworm").WithPassword("pw").StartAsync();
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.GetConnectionString());

        await connection.GetDatabase().StringSetAsync("basket", "tea");

        Assert.Equal("tea", (string?)await connection.GetDatabase().StringGetAsync("basket"));
    }

    private static async Task<int> PlaceOrderAsync(string connectionString, string item)
    {
        await using var db = NpgsqlDataSource.Create(connectionString);
        await db.CreateCommand("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)").ExecuteNonQueryAsync();
        await using var insert = db.CreateCommand("INSERT INTO orders (item) VALUES ($1) RETURNING id");
        insert.Parameters.Add(new NpgsqlParameter { Value = item });
        return (int)(await insert.ExecuteScalarAsync())!;
    }
}
