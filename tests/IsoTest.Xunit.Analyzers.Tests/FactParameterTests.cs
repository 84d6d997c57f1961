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
    public async Task Fact_NoFixtureInReach_IsoTestsDiagnosticInsteadOfXunits()
    {
        const string Sample = """
            public class Tests
            {
                [Fact]
                public void Orphan(IContainer redis) { }
            }
            """;
        var diagnostics = await Harness.XunitDiagnosticsAsync(Sample);
        var ours = await Harness.IsoTestDiagnosticsAsync(Sample);

        // xunit would say "convert it into a Theory"; IsoTest says which attribute is missing.
        Assert.Equal(["Orphan"], diagnostics.Suppressed("xUnit1001"));
        Assert.Empty(diagnostics.Reported("xUnit1001"));
        Assert.Equal(["redis"], ours.Reported("ISOTEST002"));
        Assert.Equal(
            "Parameter 'IContainer redis' of test Tests.Orphan gets no container: no [ContainerFixture] is in reach. Add [ContainerFixture(typeof(YourDefinition))] to the method, the class, its [CollectionDefinition] class or the assembly",
            ours.Single(d => d.Id == "ISOTEST002").GetMessage(System.Globalization.CultureInfo.InvariantCulture));
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

        Assert.Equal(["ByTypeName", "ByName", "Unmatched", "Ambiguous"], diagnostics.Suppressed("xUnit1001"));
        Assert.Empty(diagnostics.Reported("xUnit1001"));
        var ours = await Harness.IsoTestDiagnosticsAsync("""
            public class Tests
            {
                [Fact, ContainerFixture(typeof(Redis)), ContainerFixture(typeof(PostgresDefinition))]
                public void ByTypeName(IContainer redis, IContainer postgres) { }

                [Fact, ContainerFixture(typeof(Redis)), ContainerFixture(typeof(PostgresDefinition))]
                public void Unmatched(IContainer cache) { }

                [Fact, ContainerFixture(typeof(Redis), Name = "a"), ContainerFixture(typeof(Redis), Name = "b")]
                public void Ambiguous(IContainer redis) { }
            }
            """);
        Assert.Equal(["cache", "redis"], ours.Reported("ISOTEST002"));
        Assert.Contains(
            "its name matches none or several of the 2 [ContainerFixture] declarations in reach (typeof(Redis), Name = \"a\", typeof(Redis), Name = \"b\")",
            ours.Last(d => d.Id == "ISOTEST002").GetMessage(System.Globalization.CultureInfo.InvariantCulture),
            StringComparison.Ordinal);
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
