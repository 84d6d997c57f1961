using IsoTest.Modules.PostgreSql;

namespace IsoTest.Modules.Tests;

/// <summary>Which image a module runs by default, and what it says when the image cannot be had.</summary>
public sealed class ModuleImageTests
{
    [Fact]
    public void Current_IsTheOfficialImage_UnlessTheVariableNamesAnother()
    {
        // A variable of this test's own: the modules' real ones name the Debian images for the whole test run.
        var variable = "ISOTEST_TEST_IMAGE_" + Guid.NewGuid().ToString("N");
        var image = PostgreSqlBuilder.Image with { Variable = variable };

        Assert.Equal("postgres:16", image.Current);
        Environment.SetEnvironmentVariable(variable, "registry.example/postgres:15");
        try
        {
            Assert.Equal("registry.example/postgres:15", image.Current);
            Assert.Contains($"(named by {variable})", image.Hint(image.Current, given: false), StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void Hint_NamesTheImageTheVariableAndFromHost() =>
        AssertNamesTheFixes(PostgreSqlBuilder.Image.Hint("postgres:16", given: false), "postgres:16", "ISOTEST_POSTGRES_IMAGE");

    /// <summary>What a user without the image must read: which image, and the two ways out (the variable, the host's programs).</summary>
    internal static void AssertNamesTheFixes(string message, string image, string variable)
    {
        Assert.Contains(image, message, StringComparison.Ordinal);
        Assert.Contains(variable, message, StringComparison.Ordinal);
        Assert.Contains("FromHost()", message, StringComparison.Ordinal);
    }
}
