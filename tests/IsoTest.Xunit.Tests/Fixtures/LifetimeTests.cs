using IsoTest.Xunit.Scenarios;
using IsoTest.Xunit.Tests.Harness;
using Xunit;

namespace IsoTest.Xunit.Tests.Fixtures;

/// <summary>Which tests share a container, and when it is removed, for each lifetime (fake backend, in-process xunit runs).</summary>
public class LifetimeTests
{
    [Fact]
    public async Task Framework_UseIsoTestAttribute_SelectsContainerTestFramework()
    {
        var run = await ScenarioRunner.RunAsync("Names.");

        Assert.Equal(typeof(ContainerTestFramework), run.Framework);
    }

    [Fact]
    public async Task PerTest_EachTestGetsItsOwnContainer_RemovedAfterItsTestAndBeforeTheNext()
    {
        var run = await ScenarioRunner.RunAsync("PerTest.");

        Assert.All(run.Results, r => Assert.Equal("passed", r.Outcome));
        Assert.Equal(7, run.Results.Count);
        var used = run.Of("FakeService", "used").ToList();
        Assert.Equal(7, used.Count);
        Assert.Equal(7, used.Select(u => u.ContainerId).Distinct().Count());
        AssertEachRemovedOnceAfterUse(run, "FakeService");

        // Tests of one class run one after another: the previous test's container is gone before the next one's is created.
        var perClass = used.GroupBy(u => u.Test!.Length > 3 && u.Test.StartsWith("Rows", StringComparison.Ordinal) ? "rows" : u.Test is "One" or "Two" ? "ctor" : "method");
        foreach (var group in perClass)
        {
            var ordered = group.OrderBy(u => u.Sequence).ToList();
            for (var i = 1; i < ordered.Count; i++)
            {
                var previousRemoved = run.Of("FakeService", "disposed").Single(d => d.ContainerId == ordered[i - 1].ContainerId).Sequence;
                var nextCreated = run.Of("FakeService", "created").Single(c => c.ContainerId == ordered[i].ContainerId).Sequence;
                Assert.True(previousRemoved < nextCreated, $"{ordered[i - 1].Test}'s container was still there when {ordered[i].Test}'s was created");
            }
        }
    }

    [Fact]
    public async Task PerTest_ConstructorParameterAndTestOutputHelper_BothProvided()
    {
        var run = await ScenarioRunner.RunAsync("PerTest.PerTestFromClassScenario");

        var one = run.Result("One");
        Assert.Equal("passed", one.Outcome);
        Assert.Contains("constructor got isotest-fakeservice-", one.Output);
        Assert.Equal(2, run.Of("FakeService", "used").Select(u => u.ContainerId).Distinct().Count());
    }

    [Fact]
    public async Task PerTest_TheoryEnumeratedAtRunTime_EachRowGetsAContainer()
    {
        var run = await ScenarioRunner.RunAsync("PerTest.TheoryScenario", preEnumerateTheories: false);

        var rows = run.Results.Where(r => r.Method.StartsWith("Rows", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal("passed", r.Outcome));
        Assert.Equal(2, run.Of("FakeService", "used").Select(u => u.ContainerId).Distinct().Count());
        AssertEachRemovedOnceAfterUse(run, "FakeService");
        // The container's definition, not xunit's ??? for an argument it does not have.
        Assert.Equal(
            ["IsoTest.Xunit.Scenarios.PerTest.TheoryScenario.Rows(row: 1, fakeService: FakeService)", "IsoTest.Xunit.Scenarios.PerTest.TheoryScenario.Rows(row: 2, fakeService: FakeService)"],
            rows.Select(r => r.DisplayName).Order());
    }

    [Fact]
    public async Task PerTest_TheoryRowsDiscoveredAhead_ShowTheContainerInTheirName()
    {
        var run = await ScenarioRunner.RunAsync("PerTest.TheoryScenario");

        var rows = run.Results.Where(r => r.Method.StartsWith("Rows", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal("passed", r.Outcome));
        Assert.All(rows, r => Assert.DoesNotContain("???", r.DisplayName, StringComparison.Ordinal));
        Assert.All(rows, r => Assert.EndsWith(", fakeService: FakeService)", r.DisplayName, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Class_TestsOfAClassShareOneContainer_RemovedAfterTheClass()
    {
        // Serialized test cases: what runners do when they run a selection.
        var run = await ScenarioRunner.RunAsync("ClassShared.", serialize: true);

        Assert.All(run.Results, r => Assert.Equal("passed", r.Outcome));
        var used = run.Of("FakeService", "used").ToList();
        var first = used.Where(u => u.Test!.StartsWith("First.", StringComparison.Ordinal)).Select(u => u.ContainerId).Distinct().ToList();
        var second = used.Where(u => u.Test!.StartsWith("Second.", StringComparison.Ordinal)).Select(u => u.ContainerId).Distinct().ToList();
        Assert.Single(first);
        Assert.Single(second);
        Assert.NotEqual(first[0], second[0]);
        Assert.Equal(2, run.Of("FakeService", "created").Count());
        AssertEachRemovedOnceAfterUse(run, "FakeService");
    }

    [Fact]
    public async Task Collection_ClassesOfACollectionShareOneContainer_RemovedAfterTheCollection()
    {
        var run = await ScenarioRunner.RunAsync("CollectionShared.");

        Assert.Equal(3, run.Results.Count);
        Assert.All(run.Results, r => Assert.Equal("passed", r.Outcome));
        Assert.Single(run.Of("FakeService", "used").Select(u => u.ContainerId).Distinct());
        Assert.Single(run.Of("FakeService", "created"));
        AssertEachRemovedOnceAfterUse(run, "FakeService");
    }

    [Fact]
    public async Task Assembly_EveryTestSharesOneContainer_RemovedAfterTheRun()
    {
        var run = await ScenarioRunner.RunAsync("AssemblyShared.");

        Assert.All(run.Results, r => Assert.Equal("passed", r.Outcome));
        Assert.Single(run.Of("AssemblyWide", "created"));
        Assert.Single(run.Of("AssemblyWide", "used").Select(u => u.ContainerId).Distinct());
        AssertEachRemovedOnceAfterUse(run, "AssemblyWide");

        // Next to a per-test container, matched by parameter name.
        Assert.Single(run.Of("FakeService", "used"));
        AssertEachRemovedOnceAfterUse(run, "FakeService");
    }

    [Fact]
    public async Task Parallel_SeveralFixturesOnOneTest_StartAtTheSameTime()
    {
        var run = await ScenarioRunner.RunAsync("Parallel.");

        var both = run.Result("Both");
        Assert.True(both.Outcome == "passed", both.Failure);
        AssertEachRemovedOnceAfterUse(run, "GateA");
        AssertEachRemovedOnceAfterUse(run, "GateB");
    }

    [Fact]
    public async Task Names_SameDefinitionTwice_ToldApartByName()
    {
        var run = await ScenarioRunner.RunAsync("Names.");

        Assert.Equal("passed", run.Result("Two").Outcome);
        var used = run.Of("FakeService", "used").Where(u => u.Test!.StartsWith("Two", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, used.Select(u => u.ContainerId).Distinct().Count());
        Assert.Contains(used, u => u.Test == "Two:primary");
        Assert.Contains(used, u => u.Test == "Two:replica");
    }

    [Fact]
    public async Task PerTest_Prestarted_EachTestGetsAFreshContainerNobodyUsed_NoneLeftOver()
    {
        var run = await ScenarioRunner.RunAsync("Prestart.");

        Assert.Equal("skipped", run.Result("Skipped").Outcome);
        Assert.All(run.Results.Where(r => r.Method != "Skipped"), r => Assert.True(r.Outcome == "passed", $"{r.Method}: {r.Failure}"));
        var used = run.Of("AheadService", "used").ToList();
        Assert.Equal(["A", "B", "C", "D", "E"], used.Select(u => u.Test).Order());
        // Never handed out twice: five tests, five containers.
        Assert.Equal(5, used.Select(u => u.ContainerId).Distinct().Count());
        // One container per test that ran: none for the skipped test, none started ahead and left unused.
        Assert.Equal(5, run.Of("AheadService", "created").Count());
        AssertEachRemovedOnceAfterUse(run, "AheadService");
        // A waited (it passed) until the pool had started containers for the tests after it: they were made before A's was removed.
        var aRemoved = run.Of("AheadService", "disposed").Single(d => d.ContainerId == used.Single(u => u.Test == "A").ContainerId).Sequence;
        Assert.True(run.Of("AheadService", "started").Count(s => s.Sequence < aRemoved) >= 3, "no container was started ahead while A ran");
    }

    /// <summary>No leak: every container the run created was removed exactly once, after every test that used it.</summary>
    internal static void AssertEachRemovedOnceAfterUse(ScenarioRun run, string definition)
    {
        foreach (var created in run.Of(definition, "created"))
        {
            var removals = run.Of(definition, "disposed").Where(d => d.ContainerId == created.ContainerId).ToList();
            Assert.True(removals.Count == 1, $"{definition} container {created.ContainerId} was removed {removals.Count} times");
            foreach (var use in run.Of(definition, "used").Where(u => u.ContainerId == created.ContainerId))
            {
                Assert.True(use.Sequence < removals[0].Sequence, $"{definition} container {created.ContainerId} was removed before {use.Test} used it");
            }
        }
    }
}
