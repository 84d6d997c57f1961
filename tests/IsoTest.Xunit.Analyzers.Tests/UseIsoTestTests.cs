using IsoTest.Xunit.Analyzers.CodeFixes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using Xunit;

namespace IsoTest.Xunit.Analyzers.Tests;

/// <summary>ISOTEST001: a [ContainerFixture] in a project without [assembly: UseIsoTest], and its code fix.</summary>
public class UseIsoTestTests
{
    private const string WithoutFramework = """
        [assembly: ContainerFixture(typeof(PostgresDefinition))]

        [ContainerFixture(typeof(Redis))]
        public class Tests
        {
            [Fact, ContainerFixture(typeof(Redis), Name = "other")]
            public void Stores(IContainer redis) { }
        }
        """;

    [Fact]
    public async Task ContainerFixture_WithoutUseIsoTest_ReportedAtEveryAttribute()
    {
        var diagnostics = await Harness.IsoTestDiagnosticsAsync(WithoutFramework);

        Assert.Equal(
            ["ContainerFixture(typeof(PostgresDefinition))", "ContainerFixture(typeof(Redis))", "ContainerFixture(typeof(Redis), Name = \"other\")"],
            diagnostics.Reported("ISOTEST001"));
        Assert.All(diagnostics.Where(d => d.Id == "ISOTEST001"), d =>
        {
            Assert.Equal(DiagnosticSeverity.Error, d.Severity);
            Assert.StartsWith("[ContainerFixture] has no effect without the IsoTest test framework: add [assembly: UseIsoTest]", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        });
    }

    [Theory]
    [InlineData("[assembly: UseIsoTest]")]
    [InlineData("[assembly: TestFramework(\"IsoTest.Xunit.ContainerTestFramework\", \"IsoTest.Xunit\")]")]
    public async Task ContainerFixture_WithTheFramework_NotReported(string framework)
    {
        var diagnostics = await Harness.IsoTestDiagnosticsAsync(framework + "\n" + WithoutFramework);
        Assert.Empty(diagnostics.Reported("ISOTEST001"));
    }

    [Fact]
    public async Task NoContainerFixture_NotReported()
    {
        var diagnostics = await Harness.IsoTestDiagnosticsAsync("""
            public class Tests
            {
                [Fact]
                public void Plain() { }
            }
            """);
        Assert.Empty(diagnostics);
    }

    [Fact]
    public async Task CodeFix_AddsUseIsoTest_AndTheDiagnosticGoes()
    {
        var source = Harness.FullSource(WithoutFramework);
        using var workspace = new AdhocWorkspace();
        var project = workspace.AddProject("Sample", LanguageNames.CSharp)
            .WithCompilationOptions(new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary))
            .WithParseOptions(new CSharpParseOptions(LanguageVersion.Latest))
            .WithMetadataReferences(Harness.References);
        var document = project.AddDocument("Sample.cs", SourceText.From(source));

        var diagnostic = (await Harness.AnalyzeAsync(Harness.Compile(source))).First(d => d.Id == "ISOTEST001");
        // The harness's compilation is not the workspace's; the span is the same text, so map it onto the document's tree.
        var tree = await document.GetSyntaxTreeAsync();
        var located = Diagnostic.Create(diagnostic.Descriptor, Location.Create(tree!, diagnostic.Location.SourceSpan));

        var actions = new List<CodeAction>();
        var fix = new AddUseIsoTestCodeFix();
        await fix.RegisterCodeFixesAsync(new CodeFixContext(document, located, (action, _) => actions.Add(action), CancellationToken.None));
        var action = Assert.Single(actions);
        Assert.Equal("Add [assembly: UseIsoTest]", action.Title);

        var operations = await action.GetOperationsAsync(CancellationToken.None);
        var changed = Assert.Single(operations.OfType<ApplyChangesOperation>()).ChangedSolution.GetDocument(document.Id)!;
        var fixedText = (await changed.GetTextAsync()).ToString();

        // Simplified against the sample's "using IsoTest.Xunit;", placed with the other assembly attributes.
        Assert.Contains("[assembly: UseIsoTest]", fixedText, StringComparison.Ordinal);
        Assert.True(
            fixedText.IndexOf("[assembly: UseIsoTest]", StringComparison.Ordinal) > fixedText.IndexOf("[assembly: ContainerFixture", StringComparison.Ordinal),
            fixedText);
        var after = await Harness.AnalyzeAsync(Harness.Compile(fixedText));
        Assert.Empty(after.Where(d => d.Id == "ISOTEST001"));
    }
}
