using System.Reflection;

namespace IsoTest.Xunit.Fixtures;

/// <summary>Stands in for an <see cref="IContainer"/> constructor argument until a test runs and its container is known.</summary>
internal sealed class ContainerSlot(ParameterInfo parameter)
{
    public ParameterInfo Parameter { get; } = parameter;
}

/// <summary>Matches <see cref="IContainer"/> parameters to declarations.</summary>
internal static class FixtureBinder
{
    private static readonly string[] s_suffixes = ["Definition", "Container", "Fixture"];

    /// <summary>The declaration <paramref name="parameter"/> receives.</summary>
    /// <param name="parameter">An <see cref="IContainer"/> parameter.</param>
    /// <param name="visible">The declarations in reach of the test.</param>
    /// <param name="owner">How messages name the parameter's owner, e.g. "test method CacheTests.Stores".</param>
    /// <exception cref="ContainerFixtureException">No declaration, or several, match; the message lists them.</exception>
    public static FixtureDeclaration Bind(ParameterInfo parameter, IReadOnlyList<FixtureDeclaration> visible, string owner)
    {
        var name = parameter.Name ?? "";
        if (visible.Count == 0)
        {
            throw new ContainerFixtureException(
                $"Parameter 'IContainer {name}' of {owner} has no container: no [ContainerFixture] is declared for it. " +
                "Add [ContainerFixture(typeof(YourDefinition))] to the method, the class, its [CollectionDefinition] class or the assembly.");
        }

        if (visible.Count == 1)
        {
            return visible[0];
        }

        var byName = visible.Where(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase)).ToArray();
        if (byName.Length == 1)
        {
            return byName[0];
        }

        var byType = byName.Length > 1 ? byName : visible.Where(d => d.Name is null && TypeNameMatches(d.Definition, name)).ToArray();
        if (byType.Length == 1)
        {
            return byType[0];
        }

        var choices = string.Join(", ", visible.Select(d => d.ToString()));
        throw new ContainerFixtureException(byType.Length == 0
            ? $"Parameter 'IContainer {name}' of {owner} matches none of the {visible.Count} containers in reach ({choices}): " +
              "name the parameter after a declaration's Name or its definition type (IContainer redis <-> Redis), or give the declarations a Name."
            : $"Parameter 'IContainer {name}' of {owner} matches several containers ({string.Join(", ", byType.Select(d => d.ToString()))}): " +
              "give each declaration a distinct Name (Name = \"primary\") and name the parameter after it.");
    }

    private static bool TypeNameMatches(Type definition, string parameterName)
    {
        var typeName = definition.Name;
        if (string.Equals(typeName, parameterName, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        return s_suffixes.Any(s => typeName.Length > s.Length
            && typeName.EndsWith(s, StringComparison.Ordinal)
            && string.Equals(typeName[..^s.Length], parameterName, StringComparison.OrdinalIgnoreCase));
    }
}
