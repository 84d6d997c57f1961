using Xunit;

namespace IsoTest.Xunit.Analyzers.Tests;

/// <summary>xUnit1001 (a fact with parameters): hidden exactly where IsoTest gives every parameter a container.</summary>
public class FactParameterTests
{
    [Fact]
    public async Task Fact_ContainerFromMethodFixture_Suppressed()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            public class Tests
            {
                [Fact, ContainerFixture(typeof(Redis))]
                public Task Stores(IContainer redis) => Task.CompletedTask;
            }
            """);

        Assert.Equal(["Stores"], diagnostics.Suppressed("xUnit1001"));
        Assert.Empty(diagnostics.Reported("xUnit1001"));
    }

    [Fact]
    public async Task Fact_IntParameter_StillReported()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            public class Tests
            {
                [Fact, ContainerFixture(typeof(Redis))]
                public void Counts(int count) { }

                [Fact, ContainerFixture(typeof(Redis))]
                public void Mixed(IContainer redis, int count) { }
            }
            """);

        Assert.Equal(["Counts", "Mixed"], diagnostics.Reported("xUnit1001"));
        Assert.Empty(diagnostics.Suppressed("xUnit1001"));
    }

    [Fact]
    public async Task Fact_NoFixtureInReach_StillReported()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            public class Tests
            {
                [Fact]
                public void Orphan(IContainer redis) { }
            }
            """);

        Assert.Equal(["Orphan"], diagnostics.Reported("xUnit1001"));
    }

    [Fact]
    public async Task Fact_SeveralFixtures_SuppressedOnlyWhenNamesMatch()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            public class Tests
            {
                [Fact, ContainerFixture(typeof(Redis)), ContainerFixture(typeof(PostgresDefinition))]
                public void ByTypeName(IContainer redis, IContainer postgres) { }

                [Fact, ContainerFixture(typeof(Redis), Name = "primary"), ContainerFixture(typeof(Redis), Name = "replica")]
                public void ByName(IContainer primary, IContainer replica) { }

                [Fact, ContainerFixture(typeof(Redis)), ContainerFixture(typeof(PostgresDefinition))]
                public void Unmatched(IContainer cache) { }

                [Fact, ContainerFixture(typeof(Redis), Name = "a"), ContainerFixture(typeof(Redis), Name = "b")]
                public void Ambiguous(IContainer redis) { }
            }
            """);

        Assert.Equal(["ByTypeName", "ByName"], diagnostics.Suppressed("xUnit1001"));
        Assert.Equal(["Unmatched", "Ambiguous"], diagnostics.Reported("xUnit1001"));
    }

    [Fact]
    public async Task Fact_FixtureOnClassCollectionOrAssembly_Suppressed()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            [assembly: ContainerFixture(typeof(PostgresDefinition))]

            [ContainerFixture(typeof(Redis))]
            public class OnClass
            {
                [Fact]
                public void FromClass(IContainer redis) { }
            }

            [CollectionDefinition("cache"), ContainerFixture(typeof(Redis))]
            public class CacheCollection { }

            [Collection("cache")]
            public class InCollection
            {
                [Fact]
                public void FromCollection(IContainer redis) { }
            }

            public class OnlyAssembly
            {
                [Fact]
                public void FromAssembly(IContainer postgres) { }

                // With one declaration in reach IsoTest gives it to any IContainer parameter, whatever its name.
                [Fact]
                public void AnyName(IContainer redis) { }
            }
            """);

        Assert.Equal(["FromClass", "FromCollection", "FromAssembly", "AnyName"], diagnostics.Suppressed("xUnit1001"));
        Assert.Empty(diagnostics.Reported("xUnit1001"));
    }
}
