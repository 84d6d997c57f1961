using Xunit;

namespace IsoTest.Xunit.Analyzers.Tests;

/// <summary>Theory data rows shorter than the parameters (xUnit1009, xUnit1037), unused theory parameters (xUnit1026), constructor parameters (xUnit1041).</summary>
public class TheoryAndConstructorTests
{
    [Fact]
    public async Task InlineData_ContainerAfterValues_Suppressed()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            public class Tests
            {
                [Theory, InlineData(1), InlineData(2), ContainerFixture(typeof(Redis))]
                public void Rows(int row, IContainer redis) { _ = row; _ = redis; }
            }
            """);

        Assert.Equal(["InlineData(1)", "InlineData(2)"], diagnostics.Suppressed("xUnit1009"));
        Assert.Empty(diagnostics.Reported("xUnit1009"));
    }

    [Fact]
    public async Task InlineData_MissingNonContainerValue_StillReported()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            public class Tests
            {
                [Theory, InlineData(1), ContainerFixture(typeof(Redis))]
                public void TooFew(int row, int other, IContainer redis) { _ = row; _ = other; _ = redis; }

                [Theory, InlineData(1), InlineData, ContainerFixture(typeof(Redis))]
                public void OneRowTooShort(int row, IContainer redis) { _ = row; _ = redis; }

                [Theory, InlineData(1)]
                public void NoFixture(int row, IContainer redis) { _ = row; _ = redis; }
            }
            """);

        // A method keeps all its xUnit1009 errors when any of its rows leaves a non-IContainer parameter empty.
        Assert.Equal(["InlineData(1)", "InlineData(1)", "InlineData", "InlineData(1)"], diagnostics.Reported("xUnit1009"));
        Assert.Empty(diagnostics.Suppressed("xUnit1009"));
    }

    [Fact]
    public async Task TheoryData_ContainerAfterTypeArguments_Suppressed()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            public class Tests
            {
                public static TheoryData<int> Rows => new() { 1, 2 };

                public static TheoryData<int> Other => new() { 1 };

                [Theory, MemberData(nameof(Rows)), ContainerFixture(typeof(Redis))]
                public void Supplied(int row, IContainer redis) { _ = row; _ = redis; }

                [Theory, MemberData(nameof(Other)), ContainerFixture(typeof(Redis))]
                public void Missing(int row, string name, IContainer redis) { _ = row; _ = name; _ = redis; }
            }
            """);

        Assert.Equal(["MemberData(nameof(Rows))"], diagnostics.Suppressed("xUnit1037"));
        Assert.Equal(["MemberData(nameof(Other))"], diagnostics.Reported("xUnit1037"));
    }

    [Fact]
    public async Task UnusedTheoryParameter_ContainerSuppressed_DataStillReported()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            public class Tests
            {
                [Theory, InlineData(1, 2), ContainerFixture(typeof(Redis))]
                public void Rows(int row, int unused, IContainer redis) { _ = row; }
            }
            """);

        Assert.Equal(["redis"], diagnostics.Suppressed("xUnit1026"));
        Assert.Equal(["unused"], diagnostics.Reported("xUnit1026"));
    }

    [Fact]
    public async Task Constructor_ContainerFromClassOrCollection_Suppressed()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            [ContainerFixture(typeof(Redis))]
            public class PrimaryConstructor(IContainer redis)
            {
                [Fact]
                public void A() => _ = redis;
            }

            [CollectionDefinition("cache"), ContainerFixture(typeof(Redis))]
            public class CacheCollection { }

            [Collection("cache")]
            public class InCollection
            {
                private readonly IContainer _redis;

                public InCollection(IContainer redis) => _redis = redis;

                [Fact]
                public void A() => _ = _redis;
            }

            // Each test's own declaration reaches the constructor too, so every test needs one.
            public class FromEveryMethod(IContainer redis)
            {
                [Fact, ContainerFixture(typeof(Redis))]
                public void A() => _ = redis;

                [Fact, ContainerFixture(typeof(Redis), Lifetime = Lifetime.Test)]
                public void B() => _ = redis;
            }
            """);

        Assert.Equal(["redis", "redis", "redis"], diagnostics.Suppressed("xUnit1041"));
        Assert.Empty(diagnostics.Reported("xUnit1041"));
    }

    [Fact]
    public async Task Constructor_ContainerWithoutFixture_StillReported()
    {
        var diagnostics = await Harness.XunitDiagnosticsAsync("""
            public class Nothing(IContainer redis)
            {
                [Fact]
                public void A() => _ = redis;
            }

            public class OnlySomeTests(IContainer redis)
            {
                [Fact, ContainerFixture(typeof(Redis))]
                public void A() => _ = redis;

                [Fact]
                public void B() => _ = redis;
            }

            [ContainerFixture(typeof(Redis)), ContainerFixture(typeof(PostgresDefinition))]
            public class NoMatch(IContainer cache)
            {
                [Fact]
                public void A() => _ = cache;
            }

            [ContainerFixture(typeof(Redis))]
            public class NotAContainer(string redis)
            {
                [Fact]
                public void A() => _ = redis;
            }
            """);

        Assert.Equal(["redis", "redis", "cache", "redis"], diagnostics.Reported("xUnit1041"));
        Assert.Empty(diagnostics.Suppressed("xUnit1041"));
    }
}
