namespace IsoTest.Engine.Tests.Support;

public static class Probe
{
    /// <summary>Polls the engine's in-namespace port probe (the engine tests do not depend on the wait strategies).</summary>
    public static async Task WaitForPortAsync(IContainer container, int port)
    {
        var probes = (IContainerProbes)container;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!await probes.IsPortOpenAsync(port, cts.Token))
        {
            await Task.Delay(2, cts.Token);
        }
    }
}
