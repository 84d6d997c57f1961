using System.Reflection;

namespace IsoTest.Xunit.Fixtures;

/// <summary>
/// xunit (v2 and v3 alike) writes a theory row's missing arguments as <c>???</c> (<c>Rows(row: 1, redis: ???)</c>); the
/// IContainer ones are IsoTest's to fill, so the row's name shows the container's definition instead: <c>Rows(row: 1, redis: Redis)</c>.
/// </summary>
internal static class FixtureDisplayName
{
    private const string Missing = "???";

    /// <summary><paramref name="displayName"/> with each IContainer parameter's <c>???</c> replaced by the definition it binds to.</summary>
    public static string For(string displayName, Type testClass, MethodInfo method, Type? collectionDefinition)
    {
        if (!displayName.Contains(Missing, StringComparison.Ordinal))
        {
            return displayName;
        }

        var declarations = FixtureCatalog.For(testClass, method, collectionDefinition);
        var name = displayName;
        foreach (var parameter in method.GetParameters().Where(p => p.ParameterType == typeof(IContainer)))
        {
            string shown;
            try
            {
                var declaration = FixtureBinder.Bind(parameter, declarations, method.Name);
                shown = declaration.Name is null ? declaration.Definition.Name : $"{declaration.Definition.Name} \"{declaration.Name}\"";
            }
            catch (ContainerFixtureException)
            {
                continue; // the run reports why; the name keeps xunit's ???
            }

            name = name.Replace($"{parameter.Name}: {Missing}", $"{parameter.Name}: {shown}", StringComparison.Ordinal);
        }

        return name;
    }
}
