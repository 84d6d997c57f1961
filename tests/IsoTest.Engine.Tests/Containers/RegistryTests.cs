using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Containers;

/// <summary>Names are reserved atomically; containers are found by id, id prefix and name.</summary>
public sealed class RegistryTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private readonly EngineBackend _engine = fixture.Engine;

    [Fact]
    public async Task Create_TwoAtOnceWithOneName_ExactlyOneWins()
    {
        var name = "dup-" + Guid.NewGuid().ToString("N")[..8];
        var spec = Specs.Host("sleep", "30") with { Name = name };
        for (var round = 0; round < 5; round++)
        {
            var attempts = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                try
                {
                    return (Container: await _engine.CreateAsync(spec), Error: (Exception?)null);
                }
                catch (ContainerStartException e)
                {
                    return (Container: (IContainer?)null, Error: (Exception?)e);
                }
            })));

            var winner = Assert.Single(attempts, a => a.Container is not null).Container!;
            Assert.All(attempts.Where(a => a.Container is null), a => Assert.Contains($"named '{name}' already exists", a.Error!.Message));
            Assert.Equal(name, winner.Name);
            await winner.DisposeAsync();
        }

        Assert.Equal(0, _engine.LiveContainers);
    }

    [Fact]
    public async Task Find_ByIdPrefixAndName()
    {
        var name = "find-" + Guid.NewGuid().ToString("N")[..8];
        await using var container = await _engine.CreateAsync(Specs.Host("sleep", "30") with { Name = name });

        Assert.Same(container, _engine.Find(container.Id));
        Assert.Same(container, _engine.Find(container.Id[..12]));
        Assert.Same(container, _engine.Find(name));
        Assert.Null(_engine.Find("no-such-container"));
        Assert.Null(_engine.Find(""));
    }

    [Fact]
    public async Task Remove_FreesTheName()
    {
        var spec = Specs.Host("true") with { Name = "again-" + Guid.NewGuid().ToString("N")[..8] };
        var first = await _engine.CreateAsync(spec);
        await first.DisposeAsync();

        await using var second = await _engine.CreateAsync(spec);

        Assert.Null(_engine.Find(first.Id));
        Assert.Same(second, _engine.Find(spec.Name!));
    }
}
