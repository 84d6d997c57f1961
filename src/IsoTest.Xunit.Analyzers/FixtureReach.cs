using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;

namespace IsoTest.Xunit.Analyzers;

/// <summary>One <c>[ContainerFixture]</c> as the binder sees it: its definition type and optional name.</summary>
internal sealed class Declaration(ITypeSymbol definition, string? name)
{
    public ITypeSymbol Definition { get; } = definition;

    public string? Name { get; } = name;

    public bool SameContainerAs(Declaration other) =>
        SymbolEqualityComparer.Default.Equals(Definition, other.Definition) && string.Equals(Name, other.Name, StringComparison.Ordinal);
}

/// <summary>
/// Finds the <c>[ContainerFixture]</c> declarations in reach of a test and matches <c>IContainer</c> parameters to them,
/// by the same rules IsoTest.Xunit applies when the test runs (FixtureCatalog and FixtureBinder there): a parameter counts
/// as satisfied only when the test would get a container for it.
/// </summary>
internal sealed class FixtureReach(Compilation compilation, KnownTypes types, CancellationToken cancellationToken)
{
    private static readonly string[] s_suffixes = ["Definition", "Container", "Fixture"];

    private Dictionary<string, INamedTypeSymbol>? _collectionDefinitions;

    /// <summary>
    /// The declarations a test of <paramref name="testClass"/> running <paramref name="method"/> (when known) sees,
    /// innermost first: method, class, its collection definition, assembly; a definition and name declared twice counts once.
    /// </summary>
    public IReadOnlyList<Declaration> For(INamedTypeSymbol testClass, IMethodSymbol? method)
    {
        var all = new List<Declaration>();
        // Attribute.GetCustomAttributes(inherit: true) at run time: overridden methods and base classes count.
        for (var m = method; m is not null; m = m.OverriddenMethod)
        {
            Read(m.GetAttributes(), all);
        }

        AddClassChain(testClass, all);
        if (CollectionDefinitionOf(testClass) is { } definition)
        {
            AddClassChain(definition, all);
        }

        Read(compilation.Assembly.GetAttributes(), all);

        var distinct = new List<Declaration>();
        foreach (var declaration in all)
        {
            if (!distinct.Any(d => d.SameContainerAs(declaration)))
            {
                distinct.Add(declaration);
            }
        }

        return distinct;
    }

    /// <summary>Whether <paramref name="parameter"/> gets exactly one of <paramref name="visible"/> (none or several fail the test).</summary>
    public static bool Binds(IParameterSymbol parameter, IReadOnlyList<Declaration> visible)
    {
        if (visible.Count <= 1)
        {
            return visible.Count == 1;
        }

        var name = parameter.Name;
        var byName = visible.Where(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase)).ToArray();
        if (byName.Length == 1)
        {
            return true;
        }

        var byType = byName.Length > 1 ? byName : visible.Where(d => d.Name is null && TypeNameMatches(d.Definition, name)).ToArray();
        return byType.Length == 1;
    }

    private static bool TypeNameMatches(ITypeSymbol definition, string parameterName)
    {
        // MetadataName is what Type.Name gives at run time (Redis, Cache`1).
        var typeName = definition.MetadataName;
        if (string.Equals(typeName, parameterName, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        return s_suffixes.Any(s => typeName.Length > s.Length
            && typeName.EndsWith(s, StringComparison.Ordinal)
            && string.Equals(typeName.Substring(0, typeName.Length - s.Length), parameterName, StringComparison.OrdinalIgnoreCase));
    }

    private void AddClassChain(INamedTypeSymbol type, List<Declaration> into)
    {
        for (var t = type; t is not null; t = t.BaseType)
        {
            Read(t.GetAttributes(), into);
        }
    }

    private void Read(ImmutableArray<AttributeData> attributes, List<Declaration> into)
    {
        foreach (var attribute in attributes)
        {
            if (!SymbolEqualityComparer.Default.Equals(attribute.AttributeClass, types.ContainerFixture)
                || attribute.ConstructorArguments.Length != 1
                || attribute.ConstructorArguments[0].Value is not ITypeSymbol definition
                || definition.TypeKind == TypeKind.Error)
            {
                continue;
            }

            string? name = null;
            foreach (var argument in attribute.NamedArguments)
            {
                if (argument.Key == "Name" && argument.Value.Value is string value && !string.IsNullOrWhiteSpace(value))
                {
                    name = value;
                }
            }

            into.Add(new Declaration(definition, name));
        }
    }

    /// <summary>The <c>[CollectionDefinition]</c> class of the test class's <c>[Collection]</c>, if both exist (in this assembly, as xunit v2 requires).</summary>
    private INamedTypeSymbol? CollectionDefinitionOf(INamedTypeSymbol testClass)
    {
        if (types.Collection is null || types.CollectionDefinition is null)
        {
            return null;
        }

        string? collectionName = null;
        for (var t = testClass; t is not null && collectionName is null; t = t.BaseType)
        {
            collectionName = t.GetAttributes()
                .Where(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, types.Collection))
                .Select(a => a.ConstructorArguments.Length == 1 ? a.ConstructorArguments[0].Value as string : null)
                .FirstOrDefault(n => n is not null);
        }

        if (collectionName is null)
        {
            return null;
        }

        _collectionDefinitions ??= FindCollectionDefinitions();
        return _collectionDefinitions.TryGetValue(collectionName, out var definition) ? definition : null;
    }

    private Dictionary<string, INamedTypeSymbol> FindCollectionDefinitions()
    {
        var found = new Dictionary<string, INamedTypeSymbol>(StringComparer.Ordinal);
        var pending = new Stack<INamespaceOrTypeSymbol>();
        pending.Push(compilation.Assembly.GlobalNamespace);
        while (pending.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var current = pending.Pop();
            foreach (var member in current.GetMembers())
            {
                if (member is INamespaceOrTypeSymbol nested)
                {
                    pending.Push(nested);
                }

                if (member is INamedTypeSymbol type)
                {
                    foreach (var attribute in type.GetAttributes())
                    {
                        if (SymbolEqualityComparer.Default.Equals(attribute.AttributeClass, types.CollectionDefinition)
                            && attribute.ConstructorArguments.Length == 1
                            && attribute.ConstructorArguments[0].Value is string name
                            && !found.ContainsKey(name))
                        {
                            found.Add(name, type);
                        }
                    }
                }
            }
        }

        return found;
    }
}
