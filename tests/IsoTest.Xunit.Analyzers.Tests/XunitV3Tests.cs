using Xunit;

namespace IsoTest.Xunit.Analyzers.Tests;

/// <summary>
/// The same diagnostics on an xunit v3 project: the samples compile against IsoTest.Xunit.V3 and xunit v3's own
/// assemblies (not v2's), and xunit's analyzers run in their v3 mode.
/// </summary>
public class XunitV3Tests
{
    private const string WithoutFramework = """
        [ContainerFixture(typeof(Redis))]
        public class Tests
        {
            [Fact]
            public Task Stores(IContainer redis) => Task.CompletedTask;
        }
        """;

    [Fact]
    public void Samples_CompileAgainstXunitV3_NotV2()
    {
        var compilation = Harness.Compile(Harness.FullSource(WithoutFramework), XunitVersion.V3);
        var fact = compilation.GetTypeByMetadataName("Xunit.FactAttribute");
        var fixture = compilation.GetTypeByMetadataName("IsoTest.Xunit.ContainerFixtureAttribute");

        Assert.Equal("xunit.v3.core", fact?.ContainingAssembly.Name);
        Assert.Equal("IsoTest.Xunit.V3", fixture?.ContainingAssembly.Name);
        Assert.Null(compilation.GetTypeByMetadataName("Xunit.Abstractions.ITestOutputHelper")); // v2's, absent in v3
    }

    [Fact]
    public async Task ContainerFixture_WithoutUseIsoTest_Reported()
    {
        var diagnostics = await Harness.IsoTestDiagnosticsAsync(WithoutFramework, XunitVersion.V3);

        Assert.Equal(["ContainerFixture(typeof(Redis))"], diagnostics.Reported("ISOTEST001"));
    }

    [Theory]
    [InlineData("[assembly: UseIsoTest]")]
    [InlineData("[assembly: TestFramework(typeof(IsoTest.Xunit.ContainerTestFramework))]")]
    public async Task ContainerFixture_WithTheFramework_NotReported(string framework)
    {
        var diagnostics = await Harness.IsoTestDiagnosticsAsync(framework + "\n" + WithoutFramework, XunitVersion.V3);

        Assert.Empty(diagnostics.Reported("ISOTEST001"));
    }

    [Fact]
    public async Task Fact_ContainerFromClassFixture_Xunit1001Suppressed()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("[assembly: UseIsoTest]\n" + WithoutFramework, XunitVersion.V3);

        Assert.Equal(["Stores"], diagnostics.Suppressed("xUnit1001"));
        Assert.Empty(diagnostics.Reported("xUnit1001"));
    }

    [Fact]
    public async Task Fact_NoFixtureInReach_IsoTestsDiagnosticInsteadOfXunits()
    {
        const string Sample = """
            [assembly: UseIsoTest]

            public class Tests
            {
                [Fact]
                public Task Orphan(IContainer redis) => Task.CompletedTask;

                [Fact]
                public void Counts(int count) { }
            }
            """;
        var xunit = await Harness.XunitDiagnosticsAsync(Sample, XunitVersion.V3);
        var ours = await Harness.IsoTestDiagnosticsAsync(Sample, XunitVersion.V3);

        Assert.Equal(["Orphan"], xunit.Suppressed("xUnit1001"));
        Assert.Equal(["Counts"], xunit.Reported("xUnit1001"));   // not a container: xunit's own diagnostic stays
        Assert.Equal(["redis"], ours.Reported("ISOTEST002"));
    }
}
