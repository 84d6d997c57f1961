using IsoTest.Engine.Tests.Networking.Fakes;
using IsoTest.Engine.Tests.Support;

namespace IsoTest.Engine.Tests.Networking;

/// <summary>The engine reaches networks only through its driver: checked before anything is made, attached once per container.</summary>
public sealed class NetworkDriverTests
{
    [Fact]
    public async Task Create_AsksTheDriverOnceInOrder_AndTheContainerRunsOnWhatItGave()
    {
        var driver = new RecordingNetworkDriver();
        await using (var engine = new EngineBackend(null, null, null, driver))
        {
            var result = await engine.RunAsync(Specs.Host("readlink", "/proc/self/ns/net"));

            // A private namespace, made by the agent as the fake asked.
            Assert.StartsWith("net:[", result.Stdout);
            Assert.NotEqual(new FileInfo("/proc/self/ns/net").LinkTarget + "\n", result.Stdout);
        }

        Assert.Equal(["check private", "begin private", "attach private", "end private", "remove networks", "dispose"], driver.Calls);
    }

    [Fact]
    public async Task Create_TheDriversProblem_IsReportedWithTheSpecsAndNothingIsMade()
    {
        var driver = new RecordingNetworkDriver { Problem = "WithNetwork(\"x\"): not here: use another" };
        await using var engine = new EngineBackend(null, null, null, driver);

        var e = await Assert.ThrowsAsync<InvalidContainerSpecException>(() => engine.CreateAsync(Specs.Host("true") with { Network = Network.Named("x") }));

        Assert.Equal([driver.Problem], e.Errors);
        Assert.Equal(["check x"], driver.Calls);
        Assert.Equal(0, engine.LiveContainers);
    }
}
