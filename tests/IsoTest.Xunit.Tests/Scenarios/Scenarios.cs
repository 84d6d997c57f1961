using Xunit;

namespace IsoTest.Xunit.Scenarios.PerTest
{
    public class PerTestScenario
    {
        [Fact, ContainerFixture(typeof(FakeService))]
        public void First(IContainer fakeService) => Recorder.Used(nameof(First), fakeService);

        [Fact, ContainerFixture(typeof(FakeService))]
        public void Second(IContainer fakeService) => Recorder.Used(nameof(Second), fakeService);

        [Fact, ContainerFixture(typeof(FakeService))]
        public async Task Third(IContainer fakeService)
        {
            await Task.Yield();
            Recorder.Used(nameof(Third), fakeService);
        }
    }

    /// <summary>Declared on the class with a per-test lifetime, taken by the constructor.</summary>
    [ContainerFixture(typeof(FakeService), Lifetime = Lifetime.Test)]
    public class PerTestFromClassScenario(IContainer fakeService, ITestOutputHelper output)
    {
        [Fact]
        public void One()
        {
            output.WriteLine("constructor got " + fakeService.Name);
            Recorder.Used(nameof(One), fakeService);
        }

        [Fact]
        public void Two() => Recorder.Used(nameof(Two), fakeService);
    }

    public class TheoryScenario
    {
        [Theory, InlineData(1), InlineData(2), ContainerFixture(typeof(FakeService))]
        public void Rows(int row, IContainer fakeService) => Recorder.Used("Rows" + row, fakeService);
    }
}

namespace IsoTest.Xunit.Scenarios.ClassShared
{
    [ContainerFixture(typeof(FakeService))]
    public class FirstClass(IContainer fakeService)
    {
        [Fact]
        public void A() => Recorder.Used("First.A", fakeService);

        [Fact]
        public void B(IContainer fakeService) => Recorder.Used("First.B", fakeService); // the same one as the constructor's
    }

    [ContainerFixture(typeof(FakeService))]
    public class SecondClass(IContainer fakeService)
    {
        [Fact]
        public void A() => Recorder.Used("Second.A", fakeService);

        [Fact]
        public void B() => Recorder.Used("Second.B", fakeService);
    }
}

namespace IsoTest.Xunit.Scenarios.CollectionShared
{
    [CollectionDefinition("shared service"), ContainerFixture(typeof(FakeService))]
    public class SharedServiceCollection
    {
    }

    [Collection("shared service")]
    public class FirstMember
    {
        [Fact]
        public void A(IContainer fakeService) => Recorder.Used("First.A", fakeService);
    }

    [Collection("shared service")]
    public class SecondMember(IContainer fakeService)
    {
        [Fact]
        public void A() => Recorder.Used("Second.A", fakeService);

        [Fact]
        public void B() => Recorder.Used("Second.B", fakeService);
    }
}

namespace IsoTest.Xunit.Scenarios.AssemblyShared
{
    public class FirstClass
    {
        [Fact]
        public void A(IContainer assemblyWide) => Recorder.Used("First.A", assemblyWide);
    }

    public class SecondClass(IContainer assemblyWide)
    {
        [Fact, ContainerFixture(typeof(FakeService))]
        public void B(IContainer fakeService)
        {
            Recorder.Used("Second.B", assemblyWide, "assemblyWide");
            Recorder.Used("Second.B", fakeService, "fakeService");
        }
    }
}

namespace IsoTest.Xunit.Scenarios.Parallel
{
    public class ParallelScenario
    {
        [Fact, ContainerFixture(typeof(GateA)), ContainerFixture(typeof(GateB))]
        public void Both(IContainer gateA, IContainer gateB)
        {
            Recorder.Used("Both", gateA, "gateA");
            Recorder.Used("Both", gateB, "gateB");
        }
    }
}

namespace IsoTest.Xunit.Scenarios.Names
{
    public class NamesScenario
    {
        [Fact]
        [ContainerFixture(typeof(FakeService), Name = "primary")]
        [ContainerFixture(typeof(FakeService), Name = "replica")]
        public void Two(IContainer primary, IContainer replica)
        {
            Recorder.Used("Two", primary, "primary");
            Recorder.Used("Two", replica, "replica");
        }

        [Fact, ContainerFixture(typeof(FakeService))]
        public void Unmatched(IContainer nothingCalledThis) => Recorder.Used("Unmatched", nothingCalledThis);

        [Fact, ContainerFixture(typeof(NotADefinition))]
        public void NotADefinitionType() => Recorder.Add("ran", "-", "-", "NotADefinitionType");
    }
}

namespace IsoTest.Xunit.Scenarios.Failures
{
    public class StartFailures
    {
        [Fact, ContainerFixture(typeof(BrokenService))]
        public void Broken(IContainer brokenService) => Recorder.Used("Broken", brokenService);

        [Fact, ContainerFixture(typeof(StuckService))]
        public void Stuck(IContainer stuckService) => Recorder.Used("Stuck", stuckService);

        [Fact, ContainerFixture(typeof(DeafService))]
        public void Deaf(IContainer deafService) => Recorder.Used("Deaf", deafService);

        [Fact, ContainerFixture(typeof(SeedFails))]
        public void SeedFailure(IContainer seedFails) => Recorder.Used("SeedFailure", seedFails);

        [Fact, ContainerFixture(typeof(Seeded))]
        public void SeedSuccess(IContainer seeded) => Recorder.Used("SeedSuccess", seeded);

        [Fact, ContainerFixture(typeof(FakeService)), ContainerFixture(typeof(BrokenService))]
        public void OneOfTwoBroken(IContainer fakeService, IContainer brokenService) => Recorder.Used("OneOfTwoBroken", fakeService);
    }

    [ContainerFixture(typeof(BrokenService))]
    public class SharedStartFailure(IContainer brokenService)
    {
        [Fact]
        public void A() => Recorder.Used("A", brokenService);

        [Fact]
        public void B() => Recorder.Used("B", brokenService);
    }

    public class TestBodyFailure
    {
        [Fact, ContainerFixture(typeof(FakeService))]
        public void Throws(IContainer fakeService)
        {
            Recorder.Used("Throws", fakeService);
            throw new InvalidOperationException("the test itself failed");
        }
    }
}

namespace IsoTest.Xunit.Scenarios.Output
{
    public class OutputScenario(ITestOutputHelper output)
    {
        [Fact, ContainerFixture(typeof(FakeService))]
        public void FailsAfterLogging(IContainer fakeService)
        {
            output.WriteLine("written by the test");
            ((ScenarioContainer)fakeService).Write("connection from 10.0.0.7 refused");
            Assert.Fail("expected failure");
        }

        [Fact, ContainerFixture(typeof(FakeService))]
        public void PassesQuietly(IContainer fakeService) => ((ScenarioContainer)fakeService).Write("quiet line");

        [Fact, ContainerFixture(typeof(FakeService), ShowOutput = true)]
        public void PassesAndShows(IContainer fakeService) => ((ScenarioContainer)fakeService).Write("shown on request");
    }
}

namespace IsoTest.Xunit.Scenarios.Prestart
{
    /// <summary>
    /// Five tests of one class (they run one after another) with a per-test service the pool starts ahead. The first
    /// waits until the pool has made the next tests' containers: it passes only if they were started while it ran.
    /// </summary>
    public class PrestartScenario
    {
        [Fact, ContainerFixture(typeof(AheadService))]
        public async Task A(IContainer aheadService)
        {
            Recorder.Used(nameof(A), aheadService);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (Recorder.Events.Count(e => e.Kind == "started" && e.Definition == nameof(AheadService)) < 3 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            Assert.True(Recorder.Events.Count(e => e.Kind == "started" && e.Definition == nameof(AheadService)) >= 3, "the pool did not start the next tests' containers while this test ran");
        }

        [Fact, ContainerFixture(typeof(AheadService))]
        public void B(IContainer aheadService) => Recorder.Used(nameof(B), aheadService);

        [Fact, ContainerFixture(typeof(AheadService))]
        public void C(IContainer aheadService) => Recorder.Used(nameof(C), aheadService);

        [Fact, ContainerFixture(typeof(AheadService))]
        public void D(IContainer aheadService) => Recorder.Used(nameof(D), aheadService);

        [Fact(Skip = "counted out: a skipped test takes no container, so the pool starts none for it"), ContainerFixture(typeof(AheadService))]
        public void Skipped(IContainer aheadService) => Recorder.Used(nameof(Skipped), aheadService);

        [Fact, ContainerFixture(typeof(AheadService))]
        public void E(IContainer aheadService) => Recorder.Used(nameof(E), aheadService);
    }
}
