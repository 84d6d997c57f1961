using IsoTest.Xunit.Tests.Harness;
using Xunit;

namespace IsoTest.Xunit.Tests.Fixtures;

/// <summary>Start failures, binding mistakes and failing tests: the test fails with the reason, nothing is left behind.</summary>
public class FailureTests
{
    [Fact]
    public async Task StartFailure_FailsTheTestWithTheReason_WithoutRunningIt()
    {
        var run = await ScenarioRunner.RunOnceAsync("Failures.StartFailures");

        var broken = run.Result("Broken");
        Assert.Equal("failed", broken.Outcome);
        Assert.Contains("[ContainerFixture(typeof(BrokenService))] could not start", broken.Failure);
        Assert.Contains("bind: port 6379 already in use", broken.Failure);
        Assert.DoesNotContain(run.Events, e => e.Kind == "used" && e.Test == "Broken");
        LifetimeTests.AssertEachRemovedOnceAfterUse(run, "BrokenService");
    }

    [Fact]
    public async Task StartTimeout_FailsTheTestSayingSo_AndRemovesTheContainer()
    {
        var run = await ScenarioRunner.RunOnceAsync("Failures.StartFailures");

        var stuck = run.Result("Stuck");
        Assert.Equal("failed", stuck.Outcome);
        Assert.Contains("[ContainerFixture(typeof(StuckService))] did not start within 0.3 s", stuck.Failure);
        LifetimeTests.AssertEachRemovedOnceAfterUse(run, "StuckService");
        Assert.Single(run.Of("StuckService", "disposed"));
    }

    [Fact]
    public async Task StartTimeout_BackendIgnoresCancellation_TestStillEnds()
    {
        var run = await ScenarioRunner.RunOnceAsync("Failures.StartFailures");

        var deaf = run.Result("Deaf");
        Assert.Equal("failed", deaf.Outcome);
        Assert.Contains("did not start within 0.2 s", deaf.Failure);
    }

    [Fact]
    public async Task OnStartedAsync_Throws_TestFailsAndContainerIsRemoved()
    {
        var run = await ScenarioRunner.RunOnceAsync("Failures.StartFailures");

        var seed = run.Result("SeedFailure");
        Assert.Equal("failed", seed.Outcome);
        Assert.Contains("SeedFails.OnStartedAsync failed", seed.Failure);
        Assert.Contains("relation \"users\" already exists", seed.Failure);
        Assert.Single(run.Of("SeedFails", "disposed"));

        Assert.Equal("passed", run.Result("SeedSuccess").Outcome);
        var seeded = Assert.Single(run.Of("Seeded", "seeded"));
        Assert.True(seeded.Sequence < run.Of("Seeded", "used").Single().Sequence);
    }

    [Fact]
    public async Task OneOfTwoFails_TheOtherIsRemovedToo()
    {
        var run = await ScenarioRunner.RunOnceAsync("Failures.StartFailures");

        var result = run.Result("OneOfTwoBroken");
        Assert.Equal("failed", result.Outcome);
        Assert.Contains("bind: port 6379 already in use", result.Failure);
        Assert.Single(run.Of("FakeService", "created"));
        LifetimeTests.AssertEachRemovedOnceAfterUse(run, "FakeService");
    }

    [Fact]
    public async Task SharedStartFailure_EveryTestOfTheClassFails_StartedOnce()
    {
        var run = await ScenarioRunner.RunAsync("Failures.SharedStartFailure");

        Assert.Equal(2, run.Results.Count);
        Assert.All(run.Results, r =>
        {
            Assert.Equal("failed", r.Outcome);
            Assert.Contains("bind: port 6379 already in use", r.Failure);
        });
        Assert.Single(run.Of("BrokenService", "created"));
        Assert.Empty(run.CleanupFailures);
    }

    [Fact]
    public async Task TestThrows_ContainerIsStillRemoved()
    {
        var run = await ScenarioRunner.RunAsync("Failures.TestBodyFailure");

        var result = run.Result("Throws");
        Assert.Equal("failed", result.Outcome);
        Assert.Contains("the test itself failed", result.Failure);
        LifetimeTests.AssertEachRemovedOnceAfterUse(run, "FakeService");
        Assert.Single(run.Of("FakeService", "disposed"));
    }

    [Fact]
    public async Task UnmatchedParameter_FailsNamingTheParameterAndTheChoices()
    {
        var run = await ScenarioRunner.RunOnceAsync("Names.");

        var result = run.Result("Unmatched");
        Assert.Equal("failed", result.Outcome);
        Assert.Contains("Parameter 'IContainer nothingCalledThis' of test method NamesScenario.Unmatched matches none", result.Failure);
        Assert.Contains("[ContainerFixture(typeof(FakeService))]", result.Failure);
        Assert.Contains("[ContainerFixture(typeof(AssemblyWide))]", result.Failure);
        Assert.DoesNotContain(run.Events, e => e.Test == "Unmatched");
    }

    [Fact]
    public async Task NotADefinition_FailsSayingWhatToDerive()
    {
        var run = await ScenarioRunner.RunOnceAsync("Names.");

        var result = run.Result("NotADefinitionType");
        Assert.Equal("failed", result.Outcome);
        Assert.Contains("does not derive from IsoTest.Xunit.ContainerDefinition", result.Failure);
        Assert.DoesNotContain(run.Events, e => e.Kind == "ran");
    }
}
