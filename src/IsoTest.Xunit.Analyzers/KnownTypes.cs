using Microsoft.CodeAnalysis;

namespace IsoTest.Xunit.Analyzers;

/// <summary>The IsoTest and xunit types the suppressor reasons about, resolved once per compilation.</summary>
internal sealed class KnownTypes
{
    private KnownTypes(
        INamedTypeSymbol container,
        INamedTypeSymbol containerFixture,
        INamedTypeSymbol fact,
        INamedTypeSymbol? collection,
        INamedTypeSymbol? collectionDefinition,
        INamedTypeSymbol? testCaseDiscoverer)
    {
        Container = container;
        ContainerFixture = containerFixture;
        Fact = fact;
        Collection = collection;
        CollectionDefinition = collectionDefinition;
        TestCaseDiscoverer = testCaseDiscoverer;
    }

    public INamedTypeSymbol Container { get; }

    public INamedTypeSymbol ContainerFixture { get; }

    public INamedTypeSymbol Fact { get; }

    public INamedTypeSymbol? Collection { get; }

    public INamedTypeSymbol? CollectionDefinition { get; }

    public INamedTypeSymbol? TestCaseDiscoverer { get; }

    /// <summary>Null when the compilation does not reference IsoTest.Xunit and xunit: then nothing is ours to suppress.</summary>
    public static KnownTypes? TryCreate(Compilation compilation)
    {
        var container = compilation.GetTypeByMetadataName("IsoTest.IContainer");
        var containerFixture = compilation.GetTypeByMetadataName("IsoTest.Xunit.ContainerFixtureAttribute");
        var fact = compilation.GetTypeByMetadataName("Xunit.FactAttribute");
        if (container is null || containerFixture is null || fact is null)
        {
            return null;
        }

        return new KnownTypes(
            container,
            containerFixture,
            fact,
            compilation.GetTypeByMetadataName("Xunit.CollectionAttribute"),
            compilation.GetTypeByMetadataName("Xunit.CollectionDefinitionAttribute"),
            // xunit v2 names the discoverer by string, v3 by type, each with its own attribute.
            compilation.GetTypeByMetadataName("Xunit.Sdk.XunitTestCaseDiscovererAttribute") ?? compilation.GetTypeByMetadataName("Xunit.v3.XunitTestCaseDiscovererAttribute"));
    }

    /// <summary>Whether <paramref name="parameter"/> is one IsoTest fills: a plain (not ref/out) <c>IContainer</c>.</summary>
    public bool IsContainer(IParameterSymbol parameter) =>
        parameter.RefKind == RefKind.None && SymbolEqualityComparer.Default.Equals(parameter.Type, Container);

    /// <summary>Whether <paramref name="attribute"/> is <c>[Fact]</c> or derives from it (as <c>[Theory]</c> does).</summary>
    public bool IsFactOrDerived(INamedTypeSymbol? attribute)
    {
        for (var type = attribute; type is not null; type = type.BaseType)
        {
            if (SymbolEqualityComparer.Default.Equals(type, Fact))
            {
                return true;
            }
        }

        return false;
    }
}
