using IsoTest.Engine;
using Xunit;

namespace IsoTest.Tests.Conformance;

/// <summary>The built-in engine and the busybox rootfs, one of each per class run; disposing them leaves nothing.</summary>
public sealed class EngineConformanceFixture : IAsyncLifetime
{
    public EngineBackend Engine { get; private set; } = null!;

    public BusyboxRootFs RootFs { get; private set; } = null!;

    public Task InitializeAsync()
    {
        RootFs = new BusyboxRootFs();
        Engine = new EngineBackend();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        try
        {
            await Engine.DisposeAsync();
        }
        finally
        {
            RootFs.Dispose();
        }
    }
}

/// <summary>The conformance suite on the built-in engine (root or rootless, whoever runs the tests).</summary>
public sealed class EngineConformanceTests(EngineConformanceFixture fixture)
    : ConformanceTests(fixture.RootFs), IClassFixture<EngineConformanceFixture>
{
    protected override IContainerBackend Backend => fixture.Engine;

    protected override bool IsDocker => false;

    protected override Task<int> LiveNetworksAsync() => Task.FromResult(fixture.Engine.Network.NetworkCount);

    // Tests of one class run one at a time, so any live container now is this test's leak.
    protected override Task AssertNothingLeftAsync(string testId)
    {
        Assert.Equal(0, fixture.Engine.LiveContainers);
        return Task.CompletedTask;
    }
}
