using System.Collections.Concurrent;
using System.Reflection;

namespace IsoTest.Xunit.Fixtures;

/// <summary>Where a <see cref="ContainerFixtureAttribute"/> was placed.</summary>
internal enum DeclarationSite
{
    Method,
    Class,
    Collection,
    Assembly,
}

/// <summary>One <see cref="ContainerFixtureAttribute"/>, with its lifetime resolved.</summary>
internal sealed record FixtureDeclaration(Type Definition, string? Name, Lifetime Lifetime, bool ShowOutput, DeclarationSite Site)
{
    /// <summary>Two declarations with the same key in the same scope are one container.</summary>
    public FixtureKey Key => new(Definition, Name);

    /// <summary>Why this declaration cannot be started, or null.</summary>
    public string? Problem => Validate(Definition);

    public static FixtureDeclaration From(ContainerFixtureAttribute attribute, DeclarationSite site)
    {
        var lifetime = attribute.Lifetime != Lifetime.Default
            ? attribute.Lifetime
            : site switch
            {
                DeclarationSite.Method => Lifetime.Test,
                DeclarationSite.Class => Lifetime.Class,
                DeclarationSite.Collection => Lifetime.Collection,
                _ => Lifetime.Assembly,
            };
        return new FixtureDeclaration(attribute.Definition, string.IsNullOrWhiteSpace(attribute.Name) ? null : attribute.Name, lifetime, attribute.ShowOutput, site);
    }

    /// <summary>How error messages and output headers name it: <c>[ContainerFixture(typeof(Redis), Name = "primary")]</c>.</summary>
    public override string ToString() =>
        Name is null ? $"[ContainerFixture(typeof({Definition.Name}))]" : $"[ContainerFixture(typeof({Definition.Name}), Name = \"{Name}\")]";

    private static string? Validate(Type definition)
    {
        if (!typeof(ContainerDefinition).IsAssignableFrom(definition))
        {
            return $"{definition.FullName} does not derive from IsoTest.Xunit.ContainerDefinition: make it a ContainerDefinition subclass that overrides Configure.";
        }

        if (definition.IsAbstract || definition.ContainsGenericParameters)
        {
            return $"{definition.FullName} is abstract or an open generic type: name a concrete ContainerDefinition subclass.";
        }

        if (definition.GetConstructor(BindingFlags.Public | BindingFlags.Instance, Type.EmptyTypes) is null)
        {
            return $"{definition.FullName} has no public parameterless constructor: IsoTest creates it with one; add it.";
        }

        return null;
    }
}

/// <summary>Identifies a container within a scope.</summary>
internal readonly record struct FixtureKey(Type Definition, string? Name);

/// <summary>Finds the declarations in reach of a test: method, class, collection definition, assembly (innermost first).</summary>
internal static class FixtureCatalog
{
    private static readonly ConcurrentDictionary<(Type Class, MethodInfo? Method, Type? Collection), IReadOnlyList<FixtureDeclaration>> s_cache = new();

    /// <summary>
    /// The declarations a test of <paramref name="testClass"/> (running <paramref name="method"/>, if known) sees.
    /// The same definition and name declared at several levels counts once: the innermost declaration wins.
    /// </summary>
    public static IReadOnlyList<FixtureDeclaration> For(Type testClass, MethodInfo? method, Type? collectionDefinition) =>
        s_cache.GetOrAdd((testClass, method, collectionDefinition), static key =>
        {
            var all = new List<FixtureDeclaration>();
            if (key.Method is not null)
            {
                all.AddRange(Read(key.Method.GetCustomAttributes<ContainerFixtureAttribute>(inherit: true), DeclarationSite.Method));
            }

            all.AddRange(Read(key.Class.GetCustomAttributes<ContainerFixtureAttribute>(inherit: true), DeclarationSite.Class));
            if (key.Collection is not null)
            {
                all.AddRange(Read(key.Collection.GetCustomAttributes<ContainerFixtureAttribute>(inherit: true), DeclarationSite.Collection));
            }

            all.AddRange(Read(key.Class.Assembly.GetCustomAttributes<ContainerFixtureAttribute>(), DeclarationSite.Assembly));

            var seen = new HashSet<FixtureKey>();
            return all.Where(d => seen.Add(d.Key)).ToArray();
        });

    private static IEnumerable<FixtureDeclaration> Read(IEnumerable<ContainerFixtureAttribute> attributes, DeclarationSite site) =>
        attributes.Select(a => FixtureDeclaration.From(a, site));
}
