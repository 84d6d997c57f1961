using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using IsoTest.Xunit.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;

namespace IsoTest.Xunit.Analyzers.Tests;

/// <summary>
/// UseIsoTestGenerator: a project that references IsoTest.Xunit (or .V3) and selects no framework gets
/// <c>[assembly: UseIsoTest]</c>; one that writes it, names another framework or opts out gets nothing (and ISOTEST001).
/// </summary>
public class UseIsoTestGeneratorTests
{
    private const string Fixture = """
        public class Tests
        {
            [Fact, ContainerFixture(typeof(Redis))]
            public Task Stores(IContainer redis) => Task.CompletedTask;
        }
        """;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task NoFramework_AttributeAdded_AndIsoTest001Gone(bool v3)
    {
        var (compilation, generated) = Generate(Fixture, V(v3), optOut: null);

        Assert.Equal([UseIsoTestGenerator.HintName], generated);
        Assert.Contains(compilation.Assembly.GetAttributes(), a => a.AttributeClass?.ToDisplayString() == "IsoTest.Xunit.UseIsoTestAttribute");
        Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        Assert.Empty((await Harness.AnalyzeAsync(compilation)).Reported("ISOTEST001"));
    }

    [Theory]
    [InlineData(false, "[assembly: UseIsoTest]")]
    [InlineData(true, "[assembly: UseIsoTest]")]
    [InlineData(false, "[assembly: TestFramework(\"IsoTest.Xunit.ContainerTestFramework\", \"IsoTest.Xunit\")]")]
    public void FrameworkWritten_NothingAdded_NoDuplicateAttribute(bool v3, string framework)
    {
        var (compilation, generated) = Generate(framework + "\n" + Fixture, V(v3), optOut: null);

        Assert.Empty(generated);
        Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error)); // no CS0579 duplicate
    }

    [Theory]
    [InlineData(false, "false")]
    [InlineData(true, "false")]
    [InlineData(false, " False ")]
    public async Task OptedOut_NothingAdded_AndIsoTest001IsAnError(bool v3, string optOut)
    {
        var (compilation, generated) = Generate(Fixture, V(v3), optOut);

        Assert.Empty(generated);
        var reported = (await Harness.AnalyzeAsync(compilation)).Where(d => d.Id == "ISOTEST001").ToArray();
        var diagnostic = Assert.Single(reported);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.Contains("add [assembly: UseIsoTest]", diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        Assert.Contains("<IsoTestUseTestFramework>false</IsoTestUseTestFramework>", diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }

    [Fact]
    public void OtherFrameworkNamed_NothingAdded()
    {
        var (_, generated) = Generate("[assembly: TestFramework(\"Some.Other.Framework\", \"Some.Other\")]\n" + Fixture, XunitVersion.V2, optOut: null);

        Assert.Empty(generated);
    }

    [Fact]
    public void OptOutTrue_StillAdded()
    {
        var (_, generated) = Generate(Fixture, XunitVersion.V2, optOut: "true");

        Assert.Equal([UseIsoTestGenerator.HintName], generated);
    }

    [Fact]
    public void NoIsoTestXunitReference_NothingAdded()
    {
        var compilation = CSharpCompilation.Create(
            "Plain",
            [CSharpSyntaxTree.ParseText("public class C { }", new CSharpParseOptions(LanguageVersion.Latest))],
            [MetadataReference.CreateFromFile(typeof(object).Assembly.Location)],
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));

        Assert.False(UseIsoTestGenerator.Needed(compilation));
    }

    private static XunitVersion V(bool v3) => v3 ? XunitVersion.V3 : XunitVersion.V2;

    private static (Compilation Compilation, string[] Generated) Generate(string source, XunitVersion version, string? optOut)
    {
        var compilation = CSharpCompilation.Create(
            "Sample",
            [CSharpSyntaxTree.ParseText(Harness.FullSource(source), new CSharpParseOptions(LanguageVersion.Latest), path: "Sample.cs")],
            Harness.ReferencesFor(version),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        var options = new OptionsProvider(optOut is null ? [] : new Dictionary<string, string> { [UseIsoTestGenerator.OptOutProperty] = optOut });
        var driver = CSharpGeneratorDriver.Create([new UseIsoTestGenerator().AsSourceGenerator(), new SuppressionGenerator().AsSourceGenerator()], optionsProvider: options)
            .RunGeneratorsAndUpdateCompilation(compilation, out var withGenerated, out var errors);
        Assert.Empty(errors);
        var generated = driver.GetRunResult().Results.Single(r => r.Generator.GetGeneratorType() == typeof(UseIsoTestGenerator)).GeneratedSources;
        return (withGenerated, [.. generated.Select(s => s.HintName)]);
    }

    private sealed class OptionsProvider(Dictionary<string, string> values) : AnalyzerConfigOptionsProvider
    {
        public override AnalyzerConfigOptions GlobalOptions { get; } = new Options(values);

        public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => new Options([]);

        public override AnalyzerConfigOptions GetOptions(AdditionalText textFile) => new Options([]);

        private sealed class Options(Dictionary<string, string> values) : AnalyzerConfigOptions
        {
            public override bool TryGetValue(string key, [NotNullWhen(true)] out string? value) => values.TryGetValue(key, out value);
        }
    }
}
