using IsoTest.Xunit.Scenarios.RealEngine;
using IsoTest.Xunit.Tests.Harness;
using Xunit;

namespace IsoTest.Xunit.Tests.Fixtures;

/// <summary>
/// Lifetimes on the real engine: each Sleeper container's `sleep` carries a unique mark in its environment, so its
/// processes can be found in /proc while it lives and must be gone once its lifetime ends.
/// </summary>
public class EngineLifetimeTests
{
    [Fact]
    public async Task PerTest_ContainerProcessIsGoneAfterItsTest()
    {
        var run = await RunAsync("RealEngine.PerTestOnEngine");

        Assert.All(run.Results, r => Assert.True(r.Outcome == "passed", r.Failure));
        var used = run.Of("Sleeper", "used").ToList();
        Assert.Equal(2, used.Count);
        Assert.NotEqual(used[0].ContainerId, used[1].ContainerId);
        foreach (var use in used)
        {
            // While a test ran, its own container's process lived, and no other Sleeper of the class did.
            var (own, live) = Parse(use.Detail);
            Assert.Equal([own], live);
        }

        Assert.Empty(Sleeper.LiveMarks());
    }

    [Fact]
    public async Task PerTest_Prestarted_EachTestClaimsAFreshContainer_AllGoneAfterTheRun()
    {
        var run = await RunAsync("RealEngine.PrestartOnEngine");

        Assert.All(run.Results, r => Assert.True(r.Outcome == "passed", r.Failure));
        var used = run.Of("AheadSleeper", "used").ToList();
        Assert.Equal(4, used.Count);
        Assert.Equal(4, used.Select(u => u.ContainerId).Distinct().Count());
        Assert.All(used, u => Assert.Equal("0", u.Detail)); // no container had been claimed before its test
        // The pool is drained with the run: nothing started ahead outlives it.
        Assert.Empty(Sleeper.LiveMarks());
    }

    [Fact]
    public async Task Class_TestsShareOneContainer_GoneAfterTheClass()
    {
        var run = await RunAsync("RealEngine.ClassOnEngine");

        Assert.All(run.Results, r => Assert.True(r.Outcome == "passed", r.Failure));
        var used = run.Of("Sleeper", "used").ToList();
        Assert.Equal(2, used.Count);
        Assert.Equal(used[0].ContainerId, used[1].ContainerId);
        var (own, live) = Parse(used[0].Detail);
        Assert.Equal([own], live);
        Assert.Empty(Sleeper.LiveMarks());
    }

    private static async Task<ScenarioRun> RunAsync(string classPrefix)
    {
        // The scenario classes read the mark when they configure a container; RunAsync runs one scenario at a time.
        Sleeper.RunMark = "xunit-" + Guid.NewGuid().ToString("N");
        return await ScenarioRunner.RunAsync(classPrefix);
    }

    private static (string Own, string[] Live) Parse(string? detail)
    {
        var parts = detail!.Split('|');
        return (parts[0], parts[1].Split(',', StringSplitOptions.RemoveEmptyEntries));
    }
}
