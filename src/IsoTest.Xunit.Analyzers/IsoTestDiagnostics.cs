using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace IsoTest.Xunit.Analyzers;

/// <summary>
/// IsoTest's own diagnostics, each naming the fix:
/// ISOTEST001, a <c>[ContainerFixture]</c> in an assembly without <c>[assembly: UseIsoTest]</c> (xunit's own framework would
/// run it and say "Fact methods are not allowed to have parameters");
/// ISOTEST002, an <c>IContainer</c> parameter of a fact that gets no container (instead of xunit's xUnit1001, "convert it into a Theory").
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
internal sealed class IsoTestDiagnostics : DiagnosticAnalyzer
{
    public const string MissingFrameworkId = "ISOTEST001";

    public const string UnboundParameterId = "ISOTEST002";

    internal static readonly DiagnosticDescriptor MissingFramework = new(
        MissingFrameworkId,
        "[ContainerFixture] needs [assembly: UseIsoTest]",
        "[ContainerFixture] has no effect without the IsoTest test framework: add [assembly: UseIsoTest] to one file of this project (IsoTest.Xunit adds it by itself unless the project sets <IsoTestUseTestFramework>false</IsoTestUseTestFramework> or names another framework with [assembly: TestFramework]; xunit's own framework would run the test and fail it with \"Fact methods are not allowed to have parameters\")",
        "IsoTest.Usage",
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "IsoTest starts [ContainerFixture] containers and passes them to tests through its xunit test framework, which [assembly: UseIsoTest] selects.");

    internal static readonly DiagnosticDescriptor UnboundParameter = new(
        UnboundParameterId,
        "IContainer parameter gets no container",
        "Parameter 'IContainer {0}' of test {1} gets no container: {2}",
        "IsoTest.Usage",
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "IsoTest passes an IContainer parameter the container of the one [ContainerFixture] in reach, or, with several, the one its name matches.");

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(MissingFramework, UnboundParameter);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            if (KnownTypes.TryCreate(start.Compilation) is not { } types)
            {
                return;
            }

            if (!UsesIsoTestFramework(start.Compilation))
            {
                start.RegisterSyntaxNodeAction(c => ReportFixtureWithoutFramework(c, types), SyntaxKind.Attribute);
            }

            var reach = new FixtureReach(start.Compilation, types, start.CancellationToken);
            start.RegisterSymbolAction(c => ReportUnboundParameters(c, types, reach), SymbolKind.Method);
        });
    }

    /// <summary>
    /// <c>[assembly: UseIsoTest]</c>, or the framework named by hand: <c>[assembly: TestFramework("IsoTest.Xunit.ContainerTestFramework", ...)]</c>.
    /// By name, so the xunit v2 and v3 packages' attributes both count.
    /// </summary>
    internal static bool UsesIsoTestFramework(Compilation compilation) =>
        compilation.Assembly.GetAttributes().Any(a =>
            a.AttributeClass?.ToDisplayString() == "IsoTest.Xunit.UseIsoTestAttribute"
            || (a.AttributeClass?.ToDisplayString() == "Xunit.TestFrameworkAttribute"
                && a.ConstructorArguments.Length > 0
                && (a.ConstructorArguments[0].Value as string ?? (a.ConstructorArguments[0].Value as ITypeSymbol)?.ToDisplayString()) is string name
                && name.StartsWith("IsoTest.Xunit.", System.StringComparison.Ordinal)));

    private static void ReportFixtureWithoutFramework(SyntaxNodeAnalysisContext context, KnownTypes types)
    {
        var attribute = (AttributeSyntax)context.Node;
        if (context.SemanticModel.GetSymbolInfo(attribute, context.CancellationToken).Symbol is IMethodSymbol constructor
            && SymbolEqualityComparer.Default.Equals(constructor.ContainingType, types.ContainerFixture))
        {
            context.ReportDiagnostic(Diagnostic.Create(MissingFramework, attribute.GetLocation()));
        }
    }

    private static void ReportUnboundParameters(SymbolAnalysisContext context, KnownTypes types, FixtureReach reach)
    {
        var method = (IMethodSymbol)context.Symbol;
        if (!SuppliedParameters.IsContainerFact(method, types))
        {
            return;
        }

        var (unbound, visible) = SuppliedParameters.UnboundParameters(method, reach);
        foreach (var parameter in unbound)
        {
            var reason = visible.Count == 0
                ? "no [ContainerFixture] is in reach. Add [ContainerFixture(typeof(YourDefinition))] to the method, the class, its [CollectionDefinition] class or the assembly"
                : $"its name matches none or several of the {visible.Count} [ContainerFixture] declarations in reach ({string.Join(", ", visible.Select(Describe))}). " +
                  "Name the parameter after a declaration's Name or its definition type (IContainer redis <-> Redis), or give the declarations distinct Names";
            context.ReportDiagnostic(Diagnostic.Create(UnboundParameter, parameter.Locations.FirstOrDefault(), parameter.Name, $"{method.ContainingType.Name}.{method.Name}", reason));
        }
    }

    private static string Describe(Declaration declaration) =>
        declaration.Name is null
            ? $"typeof({declaration.Definition.Name})"
            : $"typeof({declaration.Definition.Name}), Name = \"{declaration.Name}\"";
}
