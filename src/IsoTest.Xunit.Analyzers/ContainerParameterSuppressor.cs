using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace IsoTest.Xunit.Analyzers;

/// <summary>
/// Suppresses xunit's warnings about <c>IContainer</c> parameters that IsoTest.Xunit fills from a <c>[ContainerFixture]</c>
/// in reach: xUnit1041 (constructor parameter without a fixture source) and xUnit1026 (unused theory parameter).
/// Only where the parameter really gets a container at run time; anything else is still reported.
/// </summary>
/// <remarks>
/// xunit's errors (xUnit1001, xUnit1009, xUnit1037) are out of reach here: Roslyn never lets a suppressor hide a diagnostic
/// whose default severity is Error. <see cref="SuppressionGenerator"/> handles those.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
internal sealed class ContainerParameterSuppressor : DiagnosticSuppressor
{
    internal static readonly SuppressionDescriptor ConstructorFixture = new(
        "ISOTEST1041", "xUnit1041",
        "IsoTest.Xunit passes this IContainer constructor parameter the container of a [ContainerFixture] in reach.");

    internal static readonly SuppressionDescriptor UnusedTheoryParameter = new(
        "ISOTEST1026", "xUnit1026",
        "This theory parameter is an IContainer that IsoTest.Xunit fills from a [ContainerFixture], not theory data: there is no data to remove.");

    public override ImmutableArray<SuppressionDescriptor> SupportedSuppressions { get; } =
        ImmutableArray.Create(ConstructorFixture, UnusedTheoryParameter);

    public override void ReportSuppressions(SuppressionAnalysisContext context)
    {
        if (KnownTypes.TryCreate(context.Compilation) is not { } types)
        {
            return;
        }

        var reach = new FixtureReach(context.Compilation, types, context.CancellationToken);
        foreach (var diagnostic in context.ReportedDiagnostics)
        {
            if (diagnostic.Location.SourceTree is not { } tree
                || tree.GetRoot(context.CancellationToken).FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true)
                    .FirstAncestorOrSelf<ParameterSyntax>() is not { } syntax
                || context.GetSemanticModel(tree).GetDeclaredSymbol(syntax, context.CancellationToken) is not { ContainingSymbol: IMethodSymbol method } parameter)
            {
                continue;
            }

            var descriptor = diagnostic.Id switch
            {
                "xUnit1041" when method.MethodKind == MethodKind.Constructor
                    && SuppliedParameters.IsSuppliedConstructorParameter(parameter, method.ContainingType, types, reach) => ConstructorFixture,
                "xUnit1026" when SuppliedParameters.IsSuppliedTheoryParameter(parameter, method, types, reach) => UnusedTheoryParameter,
                _ => null,
            };
            if (descriptor is not null)
            {
                context.ReportSuppression(Suppression.Create(descriptor, diagnostic));
            }
        }
    }
}
