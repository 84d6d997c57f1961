using IsoTest.Xunit.Tests.Harness;
using Xunit;

namespace IsoTest.Xunit.Tests.Fixtures;

/// <summary>Container output in the test's output: on failure, and on request.</summary>
public class OutputTests
{
    [Fact]
    public async Task FailedTest_OutputHasTheContainersLinesAfterTheTestsOwn()
    {
        var run = await ScenarioRunner.RunOnceAsync("Output.");

        var result = run.Result("FailsAfterLogging");
        Assert.Equal("failed", result.Outcome);
        Assert.Contains("written by the test", result.Output);
        Assert.Contains("----- [ContainerFixture(typeof(FakeService))]: container isotest-fakeservice-", result.Output);
        Assert.Contains("connection from 10.0.0.7 refused", result.Output);
        Assert.True(result.Output.IndexOf("written by the test", StringComparison.Ordinal) < result.Output.IndexOf("connection from", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PassedTest_NoContainerOutputUnlessShowOutput()
    {
        var run = await ScenarioRunner.RunOnceAsync("Output.");

        var quiet = run.Result("PassesQuietly");
        Assert.Equal("passed", quiet.Outcome);
        Assert.DoesNotContain("quiet line", quiet.Output);

        var shown = run.Result("PassesAndShows");
        Assert.Equal("passed", shown.Outcome);
        Assert.Contains("shown on request", shown.Output);
        Assert.Contains("FakeService is ready", shown.Output);
    }
}
