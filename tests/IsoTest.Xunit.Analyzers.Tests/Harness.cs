using System.Collections.Immutable;
using System.Reflection;
using IsoTest.Xunit.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace IsoTest.Xunit.Analyzers.Tests;

/// <summary>Which IsoTest package and xunit a sample compiles against.</summary>
internal enum XunitVersion
{
    /// <summary>IsoTest.Xunit and xunit 2.9 (the assemblies this test project itself references).</summary>
    V2,

    /// <summary>IsoTest.Xunit.V3 and xunit v3 4.x, as files in xunit-v3/ (they cannot be loaded next to v2).</summary>
    V3,
}

/// <summary>Compiles a test source against the real IsoTest.Xunit (or IsoTest.Xunit.V3) and xunit, runs xunit's analyzers with ours, and returns xunit's diagnostics.</summary>
internal static class Harness
{
    private const string Usings = """
        using System.Collections.Generic;
        using System.Threading.Tasks;
        using IsoTest;
        using IsoTest.Xunit;
        using Xunit;

        """;

    // After the sample, so that a sample may start with assembly attributes.
    private const string Definitions = """

        public sealed class Redis : ContainerDefinition
        {
            public override ContainerBuilder Configure(ContainerBuilder builder) => builder;
        }

        public sealed class PostgresDefinition : ContainerDefinition
        {
            public override ContainerBuilder Configure(ContainerBuilder builder) => builder;
        }

        """;

    private static readonly Lazy<ImmutableArray<DiagnosticAnalyzer>> s_xunitAnalyzers = new(LoadXunitAnalyzers);

    private static readonly Lazy<ImmutableArray<MetadataReference>> s_references = new(() =>
        ReferencesTo(new[] { typeof(ContainerFixtureAttribute), typeof(FactAttribute), typeof(ITestOutputHelper) }.Select(t => t.Assembly.Location)));

    private static readonly Lazy<ImmutableArray<MetadataReference>> s_v3References = new(() =>
        ReferencesTo(new[] { "IsoTest.Xunit.V3.dll", "xunit.v3.core.dll", "xunit.v3.common.dll" }.Select(f => Path.Combine(AppContext.BaseDirectory, "xunit-v3", f))));

    // The platform and this process's other assemblies (IsoTest itself among them), without any xunit or IsoTest.Xunit
    // assembly of this test process (xunit v2's): then one xunit version's, with IsoTest's package for it.
    private static ImmutableArray<MetadataReference> ReferencesTo(IEnumerable<string> xunitAssemblies)
    {
        var loaded = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => !Path.GetFileName(p).StartsWith("xunit", StringComparison.OrdinalIgnoreCase)
                && !Path.GetFileName(p).StartsWith("IsoTest.Xunit", StringComparison.Ordinal));
        return [.. loaded.Concat(xunitAssemblies).Distinct().Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))];
    }

    /// <summary>xunit's diagnostics for <paramref name="source"/>; suppressed ones come back with <see cref="Diagnostic.IsSuppressed"/> set.</summary>
    public static async Task<ImmutableArray<Diagnostic>> XunitDiagnosticsAsync(string source, XunitVersion version = XunitVersion.V2) =>
        [.. (await AllDiagnosticsAsync(source, version)).Where(d => d.Id.StartsWith("xUnit", StringComparison.Ordinal))];

    /// <summary>IsoTest's own diagnostics (ISOTEST...) for <paramref name="source"/>.</summary>
    public static async Task<ImmutableArray<Diagnostic>> IsoTestDiagnosticsAsync(string source, XunitVersion version = XunitVersion.V2) =>
        [.. (await AllDiagnosticsAsync(source, version)).Where(d => d.Id.StartsWith("ISOTEST", StringComparison.Ordinal))];

    /// <summary>The sample's full text as the harness compiles it: usings, <paramref name="source"/>, the definitions.</summary>
    public static string FullSource(string source) => Usings + source + Definitions;

    /// <summary>The sample compiled against the real IsoTest.Xunit (or .V3) and xunit, with IsoTest's generator run.</summary>
    public static Compilation Compile(string fullSource, XunitVersion version = XunitVersion.V2)
    {
        var compilation = CSharpCompilation.Create(
            "Sample",
            [CSharpSyntaxTree.ParseText(fullSource, new CSharpParseOptions(LanguageVersion.Latest), path: "Sample.cs")],
            ReferencesFor(version),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

        CSharpGeneratorDriver.Create(new SuppressionGenerator().AsSourceGenerator())
            .RunGeneratorsAndUpdateCompilation(compilation, out var withGenerated, out var generatorErrors);
        Assert.Empty(generatorErrors);
        // A sample that does not compile would make every assertion about analyzer output meaningless.
        Assert.Empty(withGenerated.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        return withGenerated;
    }

    /// <summary>What the xunit v2 samples compile against.</summary>
    public static ImmutableArray<MetadataReference> References => s_references.Value;

    /// <summary>What the samples of <paramref name="version"/> compile against.</summary>
    public static ImmutableArray<MetadataReference> ReferencesFor(XunitVersion version) =>
        version == XunitVersion.V3 ? s_v3References.Value : s_references.Value;

    /// <summary>Every analyzer diagnostic (xunit's and IsoTest's) for the compiled sample.</summary>
    public static async Task<ImmutableArray<Diagnostic>> AnalyzeAsync(Compilation withGenerated)
    {
        var analyzers = s_xunitAnalyzers.Value.Add(new ContainerParameterSuppressor()).Add(new IsoTestDiagnostics());
        var options = new CompilationWithAnalyzersOptions(
            new AnalyzerOptions([]), onAnalyzerException: null, concurrentAnalysis: false, logAnalyzerExecutionTime: false, reportSuppressedDiagnostics: true);
        var diagnostics = await withGenerated.WithAnalyzers(analyzers, options).GetAnalyzerDiagnosticsAsync();
        var failures = diagnostics.Where(d => d.Id == "AD0001").ToArray();
        Assert.True(failures.Length == 0, string.Join(Environment.NewLine, failures.Select(f => f.ToString())));
        return diagnostics;
    }

    private static Task<ImmutableArray<Diagnostic>> AllDiagnosticsAsync(string source, XunitVersion version) => AnalyzeAsync(Compile(FullSource(source), version));

    /// <summary>Where <paramref name="id"/> was reported and not suppressed, as the source text at each location, in source order.</summary>
    public static string[] Reported(this ImmutableArray<Diagnostic> diagnostics, string id) =>
        [.. diagnostics.Where(d => d.Id == id && !d.IsSuppressed).OrderBy(d => d.Location.SourceSpan.Start).Select(Text)];

    /// <summary>Where <paramref name="id"/> was reported and then suppressed.</summary>
    public static string[] Suppressed(this ImmutableArray<Diagnostic> diagnostics, string id) =>
        [.. diagnostics.Where(d => d.Id == id && d.IsSuppressed).OrderBy(d => d.Location.SourceSpan.Start).Select(Text)];

    private static string Text(Diagnostic diagnostic) =>
        diagnostic.Location.SourceTree!.GetText().ToString(diagnostic.Location.SourceSpan);

    private static ImmutableArray<DiagnosticAnalyzer> LoadXunitAnalyzers()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "xunit-analyzers", "xunit.analyzers.dll");
        var analyzers = new AnalyzerFileReference(path, new Loader()).GetAnalyzers(LanguageNames.CSharp);
        Assert.NotEmpty(analyzers);
        return analyzers;
    }

    private sealed class Loader : IAnalyzerAssemblyLoader
    {
        public void AddDependencyLocation(string fullPath)
        {
        }

        public Assembly LoadFromPath(string fullPath) => Assembly.LoadFrom(fullPath);
    }
}
