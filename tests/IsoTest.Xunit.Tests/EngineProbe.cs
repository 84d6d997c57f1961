using Xunit;

namespace IsoTest.Xunit.Tests;

public class EngineProbe
{
    [Fact]
    public async Task Direct()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var t = Task.Run(async () =>
        {
            await using var c = await new ContainerBuilder().FromHost().WithCommand("sleep", "5").StartAsync(cts.Token);
            return c.Id;
        });
        await t.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
