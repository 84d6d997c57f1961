using System.Linq;
using Microsoft.CodeAnalysis;

namespace IsoTest.Xunit.Analyzers;

/// <summary>
/// Adds <c>[assembly: UseIsoTest]</c> to a project that references IsoTest.Xunit (or .V3) and selects no test framework
/// itself, so that forgetting it cannot turn every <c>[ContainerFixture]</c> test into xunit's "Fact methods are not allowed
/// to have parameters". A project that writes the attribute, names another framework with <c>[assembly: TestFramework]</c>,
/// or sets the MSBuild property <c>IsoTestUseTestFramework</c> to <c>false</c> gets nothing; ISOTEST001 then reports a
/// <c>[ContainerFixture]</c> without the framework as a build error.
/// </summary>
[Generator(LanguageNames.CSharp)]
internal sealed class UseIsoTestGenerator : IIncrementalGenerator
{
    /// <summary>The MSBuild property (made visible to the compiler by the packages' buildTransitive targets) that opts out.</summary>
    public const string OptOutProperty = "build_property.IsoTestUseTestFramework";

    public const string HintName = "IsoTest.Xunit.UseIsoTest.g.cs";

    public const string Source = "// Added by IsoTest.Xunit: the IsoTest test framework runs this assembly's tests (opt out: <IsoTestUseTestFramework>false</IsoTestUseTestFramework>).\n[assembly: global::IsoTest.Xunit.UseIsoTest]\n";

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var optedOut = context.AnalyzerConfigOptionsProvider.Select(static (options, _) =>
            options.GlobalOptions.TryGetValue(OptOutProperty, out var value) && string.Equals(value.Trim(), "false", System.StringComparison.OrdinalIgnoreCase));
        var needed = context.CompilationProvider.Select(static (compilation, _) => Needed(compilation));

        context.RegisterSourceOutput(needed.Combine(optedOut), static (output, input) =>
        {
            if (input.Left && !input.Right)
            {
                output.AddSource(HintName, Source);
            }
        });
    }

    /// <summary>The compilation references exactly one IsoTest.Xunit package and names no test framework of its own.</summary>
    internal static bool Needed(Compilation compilation)
    {
        if (compilation.GetTypeByMetadataName("IsoTest.Xunit.UseIsoTestAttribute") is not { DeclaredAccessibility: Accessibility.Public } useIsoTest
            || SymbolEqualityComparer.Default.Equals(useIsoTest.ContainingAssembly, compilation.Assembly))
        {
            return false;
        }

        return !compilation.Assembly.GetAttributes().Any(a =>
            a.AttributeClass is { } type
            && (type.ToDisplayString() == "Xunit.TestFrameworkAttribute"
                || type.AllInterfaces.Any(i => i.Name == "ITestFrameworkAttribute")));
    }
}
