using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Formatting;
using Microsoft.CodeAnalysis.Simplification;

namespace IsoTest.Xunit.Analyzers.CodeFixes;

/// <summary>ISOTEST001: adds <c>[assembly: UseIsoTest]</c> to the file that holds the <c>[ContainerFixture]</c>.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(AddUseIsoTestCodeFix)), Shared]
public sealed class AddUseIsoTestCodeFix : CodeFixProvider
{
    /// <summary>The title users see in the light bulb menu.</summary>
    public const string Title = "Add [assembly: UseIsoTest]";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(IsoTestDiagnostics.MissingFrameworkId);

    /// <inheritdoc/>
    /// <remarks>One attribute fixes every ISOTEST001 of the project, so there is nothing to fix all at once.</remarks>
    public override FixAllProvider? GetFixAllProvider() => null;

    /// <inheritdoc/>
    public override Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        foreach (var diagnostic in context.Diagnostics)
        {
            context.RegisterCodeFix(
                CodeAction.Create(Title, token => AddAttributeAsync(context.Document, token), equivalenceKey: Title),
                diagnostic);
        }

        return Task.CompletedTask;
    }

    private static async Task<Document> AddAttributeAsync(Document document, CancellationToken cancellationToken)
    {
        if (await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false) is not CompilationUnitSyntax root)
        {
            return document;
        }

        // Fully qualified, then simplified against the file's usings: "UseIsoTest" where IsoTest.Xunit is imported.
        var name = SyntaxFactory.ParseName("global::IsoTest.Xunit.UseIsoTest").WithAdditionalAnnotations(Simplifier.Annotation);
        var attribute = SyntaxFactory.AttributeList(
                SyntaxFactory.AttributeTargetSpecifier(SyntaxFactory.Token(SyntaxKind.AssemblyKeyword)),
                SyntaxFactory.SingletonSeparatedList(SyntaxFactory.Attribute(name)))
            .WithTrailingTrivia(SyntaxFactory.ElasticCarriageReturnLineFeed);

        // After the usings and any assembly attributes already there, before the first declaration.
        var updated = root.WithAttributeLists(root.AttributeLists.Add(attribute.WithAdditionalAnnotations(Formatter.Annotation)));
        return document.WithSyntaxRoot(updated);
    }
}
